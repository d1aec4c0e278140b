"""The search: plan (no Ray), costs, the trial trainable, Tune parts, the results recorder,
the driver."""
