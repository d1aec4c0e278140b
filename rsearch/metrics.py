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
WIDTH = "width"
RESOLUTION = "resolution"
EPOCHS = "epochs"
TRAIN_SECONDS = "train_seconds"
PARETO = "pareto"
FAILURE = "failure"

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
