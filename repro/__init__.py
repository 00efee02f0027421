"""repro: regenerate the benchmark tables of PCL, PAUC, ProPos and CARL."""

__version__ = "0.1.0"
