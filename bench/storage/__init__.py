"""Storage benchmark: MadBase `/storage/v1` (filesystem backend) vs nginx on the same files, same run."""
