"""Reports: the analytic run, summaries, files on disk and comparisons."""
