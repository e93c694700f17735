"""Serving the marts: Parquet exports and the read-only BI database over them."""
