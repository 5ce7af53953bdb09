"""Training: the pretraining and fine-tuning runners, their optimizers,
run folders (checkpoints, resume) and the published recipes."""
