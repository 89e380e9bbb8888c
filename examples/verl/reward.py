"""rungs' verifiers as veRL reward functions: point `reward.custom_reward_function.path` here.

    reward.custom_reward_function.path=examples/verl/reward.py    # veRL 0.9 (its reward loop)
    reward.custom_reward_function.name=compute_score              # called once per response
    +reward.custom_reward_function.reward_kwargs.return_dict=true # score + logged extras
    +reward.custom_reward_function.reward_kwargs.executor=ray     # verify on the job's Ray cluster

    # veRL 0.6's legacy batch manager only (0.7+ score one response at a time; 0.9 refuses `batch`):
    reward_model.reward_manager=batch custom_reward_function.path=examples/verl/reward.py
    custom_reward_function.name=compute_score_batch               # verified rewards, one batch call
    custom_reward_function.name=compute_score_vote_batch          # TTRL: label-free majority vote

The functions are rungs.integrations' own (sandboxed worker processes, hard timeouts); see that
module for the ground-truth convention and how the vote groups the responses of one prompt.
"""

from rungs.integrations import compute_score, compute_score_batch, compute_score_vote_batch

__all__ = ["compute_score", "compute_score_batch", "compute_score_vote_batch"]
