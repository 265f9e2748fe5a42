"""Learning from demonstrations: collect expert episodes of the scripted skills and store them
as robomimic-style HDF5 datasets (`skills.training.dataset`, `skills.training.collect`), clone
them into policies (`policy`, `features`, `torch_data`, `augment`, `train`), run a checkpoint as
an implementation of its skill (`learned`) and measure it against the scripted one
(`evaluate`)."""
