"""FReTAL source-free adaptation for spoofing and deepfake detection: settings, protocol, report, commands."""
