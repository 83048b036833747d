"""The Gumbel samplers' gradient estimators on a problem with a known objective, over seeds.

    python experiments/gumbel_estimators.py [--draws 3000] [--seeds 5] [--tau 1.0]

One edge with logits (2, 0, 0, -2) and f(w) = |w - t|², t = (0, 1, 0, 0.5): per estimator and seed, the
mean gradient w.r.t. the logits and its total variance (trace of the covariance) over `--draws` draws;
then the public STGS code's sampler at the spec's (M, λ) grid: mean |∂w₀/∂α₀|, argmax frequencies and
mean entropy of the weights (the degeneracy of spec related_systems §2.6).
"""
import argparse

import jax
import jax.numpy as jnp
import numpy as np

from darts_jax.relaxations import sample_arch_weights

LOGITS = jnp.array([[2.0, 0.0, 0.0, -2.0]])
TARGET = jnp.array([[0.0, 1.0, 0.0, 0.5]])
ESTIMATORS = [("gumbel_st", 1), ("gumbel_st_mc", 5), ("gumbel_st_mc", 15), ("gumbel_rao", 5), ("gumbel_rao", 15)]


def gradients(mode, num_samples, seed, draws, tau):
    def loss(a, key):
        return jnp.sum((sample_arch_weights(key, a, tau, mode, num_samples) - TARGET) ** 2)

    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), num_samples), draws)
    return np.asarray(jax.vmap(jax.grad(loss), (None, 0))(LOGITS, keys))[:, 0].astype(np.float64)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tau", type=float, default=1.0)
    args = parser.parse_args()

    print(f"estimator          seed  total variance  mean gradient (draws {args.draws}, τ {args.tau})")
    variances = {}
    for mode, m in ESTIMATORS:
        for seed in range(args.seeds):
            grads = gradients(mode, m, seed, args.draws, args.tau)
            variances.setdefault((mode, m), []).append(grads.var(0, ddof=1).sum())
            print(f"{mode:>12} M={m:<3} {seed:>4}  {variances[(mode, m)][-1]:14.5f}  {np.round(grads.mean(0), 4)}")
    print("\nvariance relative to gumbel_st, mean over seeds:")
    base = np.mean(variances[("gumbel_st", 1)])
    for (mode, m), values in variances.items():
        print(f"{mode:>12} M={m:<3} {np.mean(values) / base:.3f}")

    print("\nstgs_repo_compat (α = (2, 0, 0, -2), 4000 draws)")
    print("  M    λ   mean |∂w0/∂α0|  argmax frequencies        mean entropy (max 1.386)")
    keys = jax.random.split(jax.random.key(0), 4000)
    for m, lam in ((1, 10.0), (5, 10.0), (15, 10.0), (15, 1.0)):
        def sample(a, k, m=m, lam=lam):
            return sample_arch_weights(k, a, lam, "stgs_repo_compat", m)
        weights = np.asarray(jax.vmap(sample, (None, 0))(LOGITS, keys))[:, 0].astype(np.float64)
        jac = np.asarray(jax.vmap(jax.jacobian(sample), (None, 0))(LOGITS, keys))[:, 0, 0, 0, 0]
        freq = np.bincount(weights.argmax(-1), minlength=4) / len(weights)
        entropy = -(weights * np.log(np.clip(weights, 1e-30, None))).sum(-1).mean()
        print(f"{m:>3} {lam:>4g}  {np.abs(jac).mean():14.2e}  {np.round(freq, 3)}  {entropy:.3f}")


if __name__ == "__main__":
    main()
