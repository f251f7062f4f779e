"""Training: config resolution with presets, the driver, callbacks."""
