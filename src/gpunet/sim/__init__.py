"""The economy lab: simulate the token economy, compare designs, find the death spiral."""
