"""The verbs: the `looop` console entry (`console`), its verb table (`table`) and one
click-free face per fast verb, named by its verb. The top floor, beside cli/: a face reads its
verb's plain spellings, runs the home's work (home/) or hands the verb to its room once its argv
parsed; click takes everything else. See docs/ARCHITECTURE.md."""
