"""Launch files, parameter sets, the kpai launcher, doctor and fleet demo of the KPAI stack."""
