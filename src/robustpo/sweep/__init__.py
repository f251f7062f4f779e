"""Studies: many trials (methods x environments x seeds x config values), each trained and
attacked into a run directory, run on Ray Tune locally or on a cluster (``robustpo sweep``).
``study`` reads study files, ``trial`` runs one trial, ``tuner`` drives Tune (the only module
that imports Ray, installed with ``pip install 'robustpo[sweep]'``)."""
