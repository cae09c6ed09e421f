"""The anomaly map: memory banks of patch features of an object's good images (thinned by a coreset), the
nearest-neighbour distance of every cell of a new image read against that place on good parts (the heatmap, its
regions and its score), the shipped ImageNet CNN the features come from by default, registration onto the bank's
reference image, fusion with the model's P(anomalous), and the map stage that runs beside each inspection. Uses the store
(golden samples), `core.backends` (tower features) and `core.inspection`."""
