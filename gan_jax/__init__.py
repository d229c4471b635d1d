"""gan_jax: functional GANs in JAX/Flax."""
