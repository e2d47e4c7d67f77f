"""The reward preview: a stratified sample of the input (``sampling``), its quotes turned into
estimates (``forecast``), and one preview, start to end (``run``)."""
