"""Metric and column names shared by the trainer, Tune, the results store and the dashboards.

Change a name here and every producer and consumer follows.
"""

# Per-epoch metrics reported by the training loop (and to Tune).
EPOCH = "epoch"
TRAIN_LOSS = "train_loss"
MINIVAL_TOP1 = "minival_top1"
MINIVAL_LOSS = "minival_loss"
TEST_TOP1 = "test_top1"
TEST_LOSS = "test_loss"
LR = "lr"
IMG_PER_S = "img_per_s"
EPOCH_SECONDS = "epoch_seconds"
WALL_S = "wall_s"

# Cost-model columns.
PARAMS = "params"
FLOPS = "flops"
LATENCY_MS = "latency_ms"

# Trial/result columns.
TRIAL_ID = "trial_id"
STATUS = "status"
DEPTH = "depth"
DEPTH_MULT = "depth_mult"  # an EfficientNet's depth multiplier (its `depth`: its block count)
WIDTH = "width"
RESOLUTION = "resolution"
EPOCHS = "epochs"
TRAIN_SECONDS = "train_seconds"
PARETO = "pareto"
FAILURE = "failure"

# The model family of a row (rsearch.architecture; rows of older writers, without one, are
# ResNet-RS).
FAMILY = "family"
DEFAULT_FAMILY = "resnetrs"

# Trial status values.
STATUS_OK = "ok"
STATUS_INFEASIBLE = "infeasible"
STATUS_FAILED = "failed"
STATUS_RUNNING = "running"
STATUS_STOPPED = "stopped"  # stopped early by the scheduler (ASHA): not a full-regime result

# The search objective: maximise minival top-1.
OBJECTIVE = MINIVAL_TOP1
OBJECTIVE_MODE = "max"

# Schema version of results.parquet / curves.parquet (readers refuse newer ones).
RESULTS_SCHEMA_VERSION = 1

# More results.parquet columns (the results store, rsearch/results.py).
MODEL = "model"
RECIPE = "recipe"
DROPOUT = "dropout"
STOCHASTIC_DEPTH = "stochastic_depth"
LABEL_SMOOTHING = "label_smoothing"
RANDAUGMENT_MAGNITUDE = "randaugment_magnitude"
RANDAUGMENT_OPS = "randaugment_ops"
WEIGHT_DECAY = "weight_decay"
EMA_DECAY = "ema_decay"
BASE_LR = "base_lr"
BATCH_SIZE = "batch_size"
LATENCY_P95_MS = "latency_p95_ms"
EPOCHS_DONE = "epochs_done"

# Noise of the measurements (results.parquet). minival_top1_se is computed by the store
# from minival_top1 and minival_size (rsearch.noise.binomial_se), never taken from a row.
MINIVAL_SIZE = "minival_size"  # images in the minival split
MINIVAL_TOP1_SE = "minival_top1_se"  # binomial standard error of minival_top1
SEED = "seed"  # training seed of the trial
CONFIRMS = "confirms"  # a confirmation rerun names the original trial here; originals have null
LATENCY_SPREAD_MS = "latency_spread_ms"  # interquartile range of the latency measurements
LATENCY_RUNS = "latency_runs"  # measurement rounds behind latency_ms
LATENCY_NOISE = "latency_noise"  # relative noise: spread / median
# latency / the space's reference architecture; null for an absolute budget
LATENCY_RATIO = "latency_ratio"
LATENCY_BORDERLINE = "latency_borderline"  # the feasibility decision was within noise of the budget

# More keys of a measured latency figure and its budget decision (rsearch.cost): the cost
# table's, never stored in results.parquet.
LATENCY_MEDIAN_MS = "latency_median_ms"  # median of the rounds' figures
LATENCY_MIN_MS = "latency_min_ms"  # fastest single block
LATENCY_ROUNDS = "latency_rounds"  # interleaved rounds behind the figure
LATENCY_RATIO_SPREAD = "latency_ratio_spread"  # latency_ratio x latency_ratio_noise
LATENCY_RATIO_NOISE = "latency_ratio_noise"  # relative noise of the ratio (both figures')
LATENCY_FEASIBLE = "latency_feasible"  # within the budget
LATENCY_MARGIN = "latency_margin"  # value / budget - 1
LATENCY_REMEASURED = "latency_remeasured"  # measured again with more rounds (borderline)
LATENCY_CACHED = "latency_cached"  # taken from the latency cache, not measured now

# Derived by the readers (rsearch.results.front_ties), never stored.
TRIAL_CONFIG = "trial_config"  # the trial's Tune config as JSON: what --resume re-runs
CHECKPOINT = "checkpoint"  # the trial's latest checkpoint folder (a weights-only checkpoint.pt)
TIED = "tied"  # a front member that cannot be told apart from a neighbouring member
TIED_WITH = "tied_with"  # the neighbouring members it is tied to (trial ids)
