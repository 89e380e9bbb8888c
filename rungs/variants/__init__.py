"""Variants: easier problems under hard ones (LADDER), as trees.

`tree` grows, saves, loads and prints variant trees from any variant maker: a task's symbolic
mutators (`Task.variants`) or the LLM-written maker in `rungs.variants.llm`.
"""

from rungs.variants.tree import MakeVariants, load_tree, render_tree, save_tree, variant_row, variant_tree

__all__ = ["MakeVariants", "load_tree", "render_tree", "save_tree", "variant_row", "variant_tree"]
