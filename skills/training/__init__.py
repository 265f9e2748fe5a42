"""Learning from demonstrations: collect expert episodes of the scripted skills and store them
as robomimic-style HDF5 datasets (`skills.training.dataset`, `skills.training.collect`)."""
