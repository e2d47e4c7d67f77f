"""Reading the input a bounded chunk at a time: a DataFrame, or CSV and Parquet files,
directories and globs (``reader``), local or in an object store (``stores``: ``s3://``,
``gs://``, ``abfs://``); a frame that speaks Arrow, Polars or DuckDB or pyarrow (``arrow``); how
CSV is read (``csv_lines``), its column types decided once for the whole input (``csv_types``),
and the problems reading marks on rows (``problems``)."""
