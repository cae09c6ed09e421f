"""The data that must never be lost: the review store in SQLite (its connection and transactions, the schema
migrations, images, inspections, the inspector's reviews and their pure edit functions, golden samples,
thresholds, model versions and training runs) and where adapter versions live on disk. Uses `core.inspection`
for findings and the basics; knows nothing of models, maps or the line."""
