"""The config schema shared by all experiments; each experiment file edits a copy.

Top-level names are the same for every experiment, so ``--config.num_steps=...``,
``--config.batch_size=...`` and ``--config.seed=...`` work everywhere.
"""

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = 'base'
  c.seed = 0
  c.num_steps = 1000             # train steps (= G updates)
  c.batch_size = 64              # global batch, split over all devices
  c.num_devices = 0              # devices in the mesh: 0 = all devices of all processes (may
                                 # change between launches: checkpoints restore on any topology)
  c.loss = 'ns'                  # key of gan_jax.losses.LOSSES
  c.n_critic = 1                 # D updates per G update
  c.ema_decay = 0.999            # EMA of G's params; 0 = off

  # Regularisers and tricks (gan_jax/penalties.py, gan_jax/steps.py).
  c.penalty = 'none'             # none | gp | gp_one_sided | r1 | r2 | dragan ('none' + loss
                                 # 'wgan_gp' still applies the GP)
  c.penalty_weight = 10.0        # lambda for GP/DRAGAN, gamma for R1/R2
  c.penalty_every = 1            # lazy regularisation: every k D steps, scaled by k
  c.weight_clip = 0.0            # WGAN weight clipping c (0 = off; loss 'wgan' defaults to 0.01)
  c.label_smoothing = 0.0        # one-sided: real targets 1 - alpha (minimax/ns)
  c.instance_noise = 0.0         # std of noise on D's inputs...
  c.instance_noise_steps = 0     # ...annealed to 0 over this many steps (0 = constant)
  c.feature_matching = False     # G matches D's feature means (Salimans et al., 2016)
  c.share_g_forward = False      # one G forward per step, reused by the G update (n_critic 1)
  c.compute_dtype = 'float32'    # float32 | bfloat16 | float16: the dtype of activations and
                                 # matmuls; params, optimizer state, BN statistics and losses
                                 # stay float32 (mixed precision for GPU/TPU)

  c.data = ml_collections.ConfigDict()
  c.data.source = 'auto'         # auto | idx | tfds | download | toy2d
  c.data.name = 'mnist'
  c.data.dir = ''                # '' = $GAN_JAX_DATA_DIR/<name>, then /usr/share/datasets/<name>
  c.data.tfds_data_dir = ''      # '' = the TFDS default
  c.data.mirrors = ()            # () = built-in mirrors for source='download'

  c.model = ml_collections.ConfigDict()
  c.model.name = 'dcgan'         # key of gan_jax.models.MODELS
  c.model.latent_dim = 100
  c.model.spectral_norm = False  # spectral normalisation of D's layers
  c.model.minibatch_std = False  # minibatch-stddev feature in D (a mode-collapse aid)
  c.model.matmul_dtype = 'float32'  # float32 | bfloat16: the big matmuls (DCGAN convs, MLP
                                   # layers) take bf16 inputs and accumulate and return f32;
                                   # all else stays f32. For CPUs with AVX512-BF16/AMX (dcgan,
                                   # mlp); on GPU/TPU use compute_dtype.
  c.model.upconv = 'custom'      # custom | lax: the DCGAN's transposed convs, our window
                                 # forward + matmul VJP (fast on XLA:CPU) or lax.conv_transpose

  c.optim = ml_collections.ConfigDict()
  c.optim.g_lr = 2e-4
  c.optim.d_lr = 2e-4
  c.optim.b1 = 0.5
  c.optim.b2 = 0.999
  c.optim.schedule = 'constant'  # constant | linear (to 0 at the end) | cosine
  c.optim.warmup_steps = 0

  c.log_every = 50               # steps between metrics.jsonl / TensorBoard / progress-bar updates
  c.eval_every = 500             # steps between sample grids and eval metrics
  c.eval_num = 5000              # samples for FD and score at each eval (image data with an
                                 # evaluation classifier); 0 = off. The best checkpoint by FD
                                 # is kept in <workdir>/checkpoints_best.
  c.checkpoint_every = 500       # steps between checkpoints (and one at the end)
  c.keep_checkpoints = 3
  c.num_grid = 64                # samples in the fixed-latent grid
  c.allow_config_change = False  # resume even if the config differs from <workdir>/config.json
  return c


def smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks a config to a seconds-long run for tests."""
  c.num_steps = 6
  c.log_every = 2
  c.eval_every = 3
  c.checkpoint_every = 3
  c.num_grid = 16
  c.eval_num = 0                 # tests that check evaluation turn it on
  return c


def conditional_dcgan(name: str, data_name: str, default_model: str, variant: str, path: str,
                      models: dict) -> ml_collections.ConfigDict:
  """The class-conditional DCGAN configs (experiments/{mnist,fashion}_cond.py).

  The 28x28 DCGAN of experiments/mnist.py with a conditional model: ``default_model`` unless one
  of the ``models`` variants (``{variant: (config name, model name)}``) picks another. Variant
  ``smoke`` shrinks the run; ``path`` names the experiment file in errors.
  """
  c = base_config()
  c.name = name
  c.data.name = data_name
  c.model.name = default_model
  c.model.ngf = 64
  c.model.ndf = 64
  c.num_steps = 3000
  c.eval_every = 500
  c.checkpoint_every = 500
  c.num_grid = 100                 # 10 classes (rows) x 10 fixed latents (columns)
  variants = variant.split(',') if variant else []
  valid = tuple(models) + ('smoke',)
  for v in variants:
    if v not in valid:
      raise ValueError(f'unknown variant {v!r} of {path}; valid: {", ".join(valid)}')
  picked = [v for v in variants if v in models]
  if len(picked) > 1:
    raise ValueError(f'variants {" and ".join(picked)} of {path} exclude each other: each picks '
                     'the model')
  if picked:
    c.name, c.model.name = models[picked[0]]
  if 'smoke' in variants:
    smoke(c)
    c.num_grid = 20                # 10 rows x 2 columns
  return c
