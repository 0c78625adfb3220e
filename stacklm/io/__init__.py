"""File input and output: matrix files in blocks (formats, text, parquet, matrix), the binary
store (store), sample sheets (samplesheet) and atomic, umask-respecting outputs (outputs)."""
