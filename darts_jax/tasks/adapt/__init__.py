"""Source-free adaptation of a trained detector to a new attack: FReTAL and its baselines."""
