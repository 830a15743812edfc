"""Better answers without labels: GSM8K evaluation, self-consistency and LMSI self-improvement.

```python
from ownchat.improve import EvalConfig, evaluate_gsm8k, SCConfig, self_consistency, LMSIConfig, run_lmsi
res = evaluate_gsm8k(EvalConfig(model="qwen2.5-coder-1.5b-instruct", out=Path("runs/g"), subset=100, sc_k=5))
res.greedy, res.sc            # Accuracy with .to_dict() -> accuracy and 95% Wilson interval
```
"""

from ownchat.improve.evaluate import Accuracy, EvalConfig, EvalResult, evaluate_gsm8k
from ownchat.improve.extract import answers_match, extract_answer, final_answer, gold_answer, normalize_number
from ownchat.improve.gsm8k import EVAL_SIZE, Problem, check_disjoint, load_problems
from ownchat.improve.lmsi import LMSIConfig, LMSIResult, run_lmsi
from ownchat.improve.prompts import build_messages, training_example
from ownchat.improve.sc import SCConfig, SCResult, SelfConsistencyEngine, self_consistency
from ownchat.improve.sc_file import SCFileConfig, run_sc_file
from ownchat.improve.vote import Vote, majority_vote

__all__ = [
    "Accuracy", "EvalConfig", "EvalResult", "evaluate_gsm8k",
    "answers_match", "extract_answer", "final_answer", "gold_answer", "normalize_number",
    "EVAL_SIZE", "Problem", "check_disjoint", "load_problems",
    "LMSIConfig", "LMSIResult", "run_lmsi", "build_messages", "training_example",
    "SCConfig", "SCResult", "SelfConsistencyEngine", "self_consistency",
    "SCFileConfig", "run_sc_file", "Vote", "majority_vote",
]
