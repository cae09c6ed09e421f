"""Qt-free core: findings, prompting, parsing, coordinates, images, inference, evaluation."""
