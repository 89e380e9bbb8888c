"""rungs' verifiers as veRL 0.9 reward functions: point `reward.custom_reward_function.path` here.

    reward.custom_reward_function.path=examples/verl/reward.py
    reward.custom_reward_function.name=compute_score              # naive / reward-loop manager
    # or, with reward.reward_manager.name=batch:
    reward.custom_reward_function.name=compute_score_batch        # verified rewards, one batch call
    reward.custom_reward_function.name=compute_score_vote_batch   # TTRL: label-free majority vote
    +reward.custom_reward_function.reward_kwargs.return_dict=true # score + logged extras
    +reward.custom_reward_function.reward_kwargs.executor=ray     # verify on the job's Ray cluster

The functions are rungs.integrations' own (sandboxed worker processes, hard timeouts); see that
module for the ground-truth convention and how the vote groups the responses of one prompt.
"""

from rungs.integrations import compute_score, compute_score_batch, compute_score_vote_batch

__all__ = ["compute_score", "compute_score_batch", "compute_score_vote_batch"]
