"""The config schema shared by all experiments (each experiment file edits a copy), and its
validation, ``validate_config``.

Top-level names are the same for every experiment, so ``--config.num_steps=...``,
``--config.batch_size=...`` and ``--config.seed=...`` work everywhere.
"""

import math

import ml_collections

from gan_jax import augment, kernels, losses, models, penalties, state
from gan_jax.errors import ConfigError


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = 'base'
  c.seed = 0
  c.num_steps = 1000             # train steps (= G updates)
  c.time_budget_s = 0.0          # wall seconds from the start of training after which the run
                                 # stops like at num_steps (final eval, checkpoint); 0 = no limit
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
  c.augment = ''                 # DiffAugment policies of every D input, real and fake
                                 # (gan_jax/augment.py): e.g. 'translation,cutout'; '' = none
  c.augment_strength = 1.0       # their magnitude: 1 = the paper's, 0 = the identity
  c.mode_seeking = 0.0           # weight of G's mode-seeking regulariser (gan_jax/diversity.py;
                                 # Mao et al., 2019): same-label pairs of fakes pushed apart
  c.share_g_forward = False      # one G forward per step, reused by the G update (n_critic 1)
  c.compute_dtype = 'float32'    # float32 | bfloat16 | float16: the dtype of activations and
                                 # matmuls; params, optimizer state, BN statistics and losses
                                 # stay float32 (mixed precision for GPU/TPU)

  c.data = ml_collections.ConfigDict()
  c.data.source = 'auto'         # auto | idx | tfds | download | toy2d | folder | npz
  c.data.name = 'mnist'
  c.data.dir = ''                # '' = $GAN_JAX_DATA_DIR/<name>, then /usr/share/datasets/<name>
  c.data.tfds_data_dir = ''      # '' = the TFDS default
  c.data.mirrors = ()            # () = built-in mirrors for source='download'
  c.data.clusters = 0            # > 0: condition G and D on this many k-means clusters of the
                                 # images instead of class labels (self-conditioning, label-free;
                                 # gan_jax/data/clusters.py); needs a conditional model
  c.data.clusters_per_class = 0  # > 0: condition on this many k-means clusters within each
                                 # class of a labelled dataset (samples keep their class)
  # Image files and big datasets (gan_jax/data/folder.py, array_file.py, stream.py).
  c.data.path = ''               # source='npz': a .npz or .npy file of images
  c.data.resolution = 0          # square size R the images are cropped/resized to (0 = as stored;
                                 # source='folder' needs it)
  c.data.channels = 0            # 1 or 3 (0 = as stored; folder: 3)
  c.data.crop = 'center'         # center: a centered square (crop_size, or the short side), then
                                 # resized; none: the whole image resized to R x R
  c.data.crop_size = 0           # side of the centered crop in pixels (0 = the short side)
  c.data.labels = 'auto'         # folder: auto (class sub-folders when every image is in one) |
                                 # folders | none
  c.data.flip = False            # random horizontal flips of the real images
  c.data.skip_bad_files = False  # skip (and count) unreadable files instead of stopping
  c.data.pipeline = 'auto'       # device: whole dataset on every device, sampled in the step |
                                 # stream: grain, per-process shards | auto: device when the
                                 # images take <= device_cache_mb
  c.data.device_cache_mb = 1024.0
  c.data.workers = 2             # stream: grain worker processes that decode (0 = in process)
  c.data.prefetch = 8            # stream: elements each worker reads ahead

  c.model = ml_collections.ConfigDict()
  c.model.name = 'dcgan'         # key of gan_jax.models.MODELS
  c.model.latent_dim = 100
  c.model.ch = 64                # base width of the DCGANs on 32-256 px data (dcgan_scaled)
  c.model.ch_mults = ()          # channel multipliers per resolution level, widest (4x4) first,
                                 # for the DCGANs and sngan_resnet on 32-256 px data; () = the
                                 # default for the data's size (gan_jax/models/__init__.py)
  c.model.spectral_norm = False  # spectral normalisation of D's layers
  c.model.minibatch_std = False  # minibatch-stddev feature in D (a mode-collapse aid)
  c.model.matmul_dtype = 'float32'  # float32 | bfloat16: the big matmuls (DCGAN-family convs,
                                   # MLP layers) take bf16 inputs and accumulate and return f32;
                                   # all else stays f32. For CPUs with AVX512-BF16/AMX (not
                                   # sngan_resnet); on GPU/TPU use compute_dtype.
  c.model.kernels = 'auto'       # auto | flax | xla_cpu: the layers' implementation
                                 # (gan_jax/kernels): flax's, or our XLA:CPU kernels (same
                                 # params); auto = xla_cpu on a CPU backend, else flax

  c.optim = ml_collections.ConfigDict()
  c.optim.g_lr = 2e-4
  c.optim.d_lr = 2e-4
  c.optim.b1 = 0.5
  c.optim.b2 = 0.999
  c.optim.schedule = 'constant'  # constant | linear (to 0 at the end) | cosine
  c.optim.warmup_steps = 0
  c.optim.decay_start = 0.0      # fraction of the run at constant lr before a linear/cosine decay

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


def recipe_optimizer(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The optimiser of the MNIST default recipe (issue #22), shared by mnist.py, fashion.py,
  mnist_cond.py and mnist_mlp.py: Adam 1e-3 for G and D, beta1 0, beta2 0.99, the rate
  constant for the first half of the run, then linearly to 0."""
  c.optim.g_lr = c.optim.d_lr = 1e-3
  c.optim.b1, c.optim.b2 = 0.0, 0.99
  c.optim.schedule, c.optim.decay_start = 'linear', 0.5
  return c


def conditional_dcgan(name: str, data_name: str, default_model: str, variant: str, path: str,
                      models: dict, extra_variants=()) -> ml_collections.ConfigDict:
  """The class-conditional DCGAN configs (experiments/{mnist,fashion}_cond.py).

  The 28x28 DCGAN of experiments/mnist.py with a conditional model: ``default_model`` unless one
  of the ``models`` variants (``{variant: (config name, model name)}``) picks another. Variant
  ``smoke`` shrinks the run; ``extra_variants`` are further names the caller handles; ``path``
  names the experiment file in errors.
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
  valid = tuple(models) + tuple(extra_variants) + ('smoke',)
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


def conditional_recipe(c: ml_collections.ConfigDict, variant: str,
                       clusters_per_class: int) -> ml_collections.ConfigDict:
  """The default recipe of the class-conditional DCGANs (experiments/{mnist,fashion}_cond.py;
  issue #22), for the concat G + projection D only: ``recipe_optimizer``, bf16 matmul operands,
  one G forward per step, each class split into ``clusters_per_class`` k-means clusters (2 in
  ``smoke``), 6000 steps. Other models keep the 2016 recipe of ``conditional_dcgan``."""
  if c.model.name != 'dcgan_concat_proj':
    return c
  recipe_optimizer(c)
  c.model.matmul_dtype = 'bfloat16'
  c.share_g_forward = True
  c.data.clusters_per_class = clusters_per_class
  if 'smoke' in variant.split(','):
    c.data.clusters_per_class = 2
  else:
    c.num_steps = 6000
    c.eval_every = c.checkpoint_every = 1000
  return c


def validate_config(config: ml_collections.ConfigDict):
  """Raises ConfigError (one line naming the value and what is valid) for bad settings."""
  def check(ok, msg):
    if not ok:
      raise ConfigError(msg)
  for key in ('num_steps', 'batch_size', 'n_critic'):
    v = config[key]
    check(isinstance(v, int) and v >= 1, f'config.{key}={v!r} must be an integer >= 1')
  ev = config.get('eval_num', 0)
  check(isinstance(ev, int) and (ev == 0 or ev >= 2),
        f'config.eval_num={ev!r} must be 0 (off) or an integer >= 2')
  for key in ('log_every', 'eval_every', 'checkpoint_every', 'keep_checkpoints', 'num_grid'):
    v = config[key]
    check(isinstance(v, int) and v >= 1, f'config.{key}={v!r} must be an integer >= 1')
  budget = config.get('time_budget_s', 0.0)
  check(isinstance(budget, (int, float)) and budget >= 0,
        f'config.time_budget_s={budget!r} must be a number of seconds >= 0 (0 = no limit)')
  check(0.0 <= config.ema_decay < 1.0,
        f'config.ema_decay={config.ema_decay!r} must lie in [0, 1) (0 turns EMA off)')
  nd = config.get('num_devices', 0)
  check(isinstance(nd, int) and nd >= 0,
        f'config.num_devices={nd!r} must be an integer >= 0 (0 = all devices)')
  check(isinstance(config.seed, int) and 0 <= config.seed < 2**63,
        f'config.seed={config.seed!r} must be an integer in [0, 2**63)')
  warmup = config.optim.get('warmup_steps', 0)
  check(isinstance(warmup, int) and warmup >= 0,
        f'config.optim.warmup_steps={warmup!r} must be an integer >= 0 (0 = no warm-up)')
  for key in ('ngf', 'ndf', 'g_ch', 'd_ch', 'num_classes'):
    v = config.model.get(key)
    if v is not None and not (key == 'num_classes' and v == 0):
      check(isinstance(v, int) and v >= 1, f'config.model.{key}={v!r} must be an integer >= 1')
  for key in ('g_hidden', 'd_hidden'):
    v = config.model.get(key)
    if v is not None:
      check(all(isinstance(h, int) and h >= 1 for h in v),
            f'config.model.{key}={tuple(v)!r} must list layer widths >= 1')
  check(config.model.latent_dim >= 1,
        f'config.model.latent_dim={config.model.latent_dim!r} must be >= 1')
  for net in ('g', 'd'):
    lr = config.optim.get(f'{net}_lr')
    check(isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0,
          f'config.optim.{net}_lr={lr!r} must be a finite learning rate > 0')
  for b in ('b1', 'b2'):
    v = config.optim.get(b)
    check(isinstance(v, (int, float)) and 0 <= v < 1,
          f'config.optim.{b}={v!r} must lie in [0, 1) (an Adam beta)')
  losses.get_loss(config.loss)
  penalties.get_penalty(config.penalty)
  check(isinstance(config.penalty_every, int) and config.penalty_every >= 1,
        f'config.penalty_every={config.penalty_every!r} must be an integer >= 1')
  check(math.isfinite(config.penalty_weight) and config.penalty_weight >= 0,
        f'config.penalty_weight={config.penalty_weight!r} must be a finite number >= 0')
  check(config.weight_clip >= 0, f'config.weight_clip={config.weight_clip!r} must be >= 0 (0 = off)')
  check(0 <= config.label_smoothing < 0.5,
        f'config.label_smoothing={config.label_smoothing!r} must lie in [0, 0.5)')
  check(config.label_smoothing == 0 or config.loss in ('minimax', 'ns'),
        f'config.label_smoothing={config.label_smoothing!r} applies to the BCE objectives '
        f'minimax and ns, not config.loss={config.loss!r}')
  check(not config.get('share_g_forward', False) or config.n_critic == 1,
        f'config.share_g_forward=True needs config.n_critic=1 (got {config.n_critic}): with '
        'several D steps there is no single fake batch to share; add '
        '--config.share_g_forward=False')
  check(config.instance_noise >= 0,
        f'config.instance_noise={config.instance_noise!r} must be >= 0 (0 = off)')
  try:
    augment.parse(config.get('augment', ''))
  except ValueError as e:
    raise ConfigError(str(e)) from None
  strength = config.get('augment_strength', 1.0)
  check(isinstance(strength, (int, float)) and 0 <= strength <= 2,
        f'config.augment_strength={strength!r} must lie in [0, 2] (1 = the paper\'s magnitudes)')
  ms = config.get('mode_seeking', 0.0)
  check(isinstance(ms, (int, float)) and math.isfinite(ms) and ms >= 0,
        f'config.mode_seeking={ms!r} must be a finite number >= 0 (0 = off)')
  start = config.optim.get('decay_start', 0.0)
  check(isinstance(start, (int, float)) and 0.0 <= start < 1.0,
        f'config.optim.decay_start={start!r} must lie in [0, 1): the fraction of the run before '
        'the learning rate starts to decay')
  check(config.optim.get('schedule', 'constant') in state.SCHEDULES,
        f'config.optim.schedule={config.optim.get("schedule")!r} is not a schedule; valid: '
        f'{", ".join(state.SCHEDULES)}')
  k = config.data.get('clusters', 0)
  check(isinstance(k, int) and k >= 0,
        f'config.data.clusters={k!r} must be an integer >= 0 (0 = the data\'s own labels)')
  check(not k or config.model.name in models.CONDITIONAL_MODELS,
        f'config.data.clusters={k} conditions the nets on clusters, but config.model.name='
        f'{config.model.name!r} is unconditional; use one of '
        f'{", ".join(sorted(models.CONDITIONAL_MODELS))} or set config.data.clusters=0')
  m = config.data.get('clusters_per_class', 0)
  check(isinstance(m, int) and m >= 0,
        f'config.data.clusters_per_class={m!r} must be an integer >= 0 (0 = the classes whole)')
  check(not (k and m), f'config.data.clusters={k} and config.data.clusters_per_class={m} are '
        'two ways of choosing the labels: set one of them to 0')
  check(not m or config.model.name in models.CONDITIONAL_MODELS,
        f'config.data.clusters_per_class={m} conditions the nets on clusters, but '
        f'config.model.name={config.model.name!r} is unconditional; use one of '
        f'{", ".join(sorted(models.CONDITIONAL_MODELS))} or set config.data.clusters_per_class=0')
  _validate_image_data(config.data, check)
  models.compute_dtype(config.get('compute_dtype', 'float32'))
  kernels.resolve(config.model.get('kernels', 'auto'))
  if config.model.name not in models.MODELS:
    models.build_models(config.model, (28, 28, 1))  # raises the listing error


def _validate_image_data(d, check):
  """The keys of image files and of the streaming pipeline (``config.data``)."""
  choices = (('pipeline', ('auto', 'device', 'stream')), ('crop', ('center', 'none')),
             ('labels', ('auto', 'folders', 'none')))
  for key, valid in choices:
    v = d.get(key, valid[0])
    check(v in valid, f'config.data.{key}={v!r} is not valid; use one of {", ".join(valid)}')
  for key, low in (('resolution', 0), ('crop_size', 0), ('workers', 0), ('prefetch', 1)):
    v = d.get(key, low)
    check(isinstance(v, int) and v >= low, f'config.data.{key}={v!r} must be an integer >= {low}')
  res = d.get('resolution', 0)
  check(res == 0 or res >= 4, f'config.data.resolution={res} is too small; use 0 (as stored) or '
        'a size >= 4, e.g. 32, 64, 128 or 256')
  ch = d.get('channels', 0)
  check(ch in (0, 1, 3), f'config.data.channels={ch!r} is not valid; use 1 (grayscale), 3 (RGB) '
        'or 0 (as stored)')
  mb = d.get('device_cache_mb', 0)
  check(isinstance(mb, (int, float)) and mb >= 0,
        f'config.data.device_cache_mb={mb!r} must be a number of MiB >= 0')
  source = d.get('source', 'auto')
  if d.get('pipeline', 'auto') == 'stream':
    check(source in ('folder', 'npz', 'tfds'), f"config.data.pipeline='stream' reads "
          f"source='folder', 'npz' or 'tfds', not {source!r}; use pipeline='device' (or 'auto')")
    for key in ('clusters', 'clusters_per_class'):
      check(not d.get(key, 0), f'config.data.{key} needs the images on the device; set '
            f"config.data.pipeline='device' or {key}=0")
