"""Reading the input a bounded batch at a time: CSV and Parquet files, directories and globs
(``reader``), and CSV column types decided once for the whole input (``csv_types``)."""
