"""Reading the input a bounded chunk at a time: a DataFrame, or CSV and Parquet files,
directories and globs (``reader``); how CSV is read (``csv_lines``), its column types decided
once for the whole input (``csv_types``), and the problems reading marks on rows (``problems``)."""
