"""Export of selected, labelled, split examples: TFRecord, image folder, Parquet."""
