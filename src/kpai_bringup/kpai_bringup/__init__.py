"""Launch files, parameter sets, robot description and the kpai launcher and doctor of the KPAI stack."""
