"""The toy detector: random data, a linear model and its AUC; the core does the rest."""
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from idao.checkpoint import check_checkpoint
from idao.engine import ModelSettings, RunSettings, fit, load_trained, predict_outputs
from idao.metrics import binary_auc
from idao.models import register_model
from idao.runtime import training_runtime
from idao.schema import COUNT, check_rules
from idao.tasks import Predictions, Report, TaskDefaults


class Linear(torch.nn.Linear):
    def get_classifier(self):
        return self


register_model("toy_linear")(lambda num_outputs, drop_rate: Linear(8, num_outputs))


def simulate(n: int, seed: int):
    x = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
    return x, (x.sum(1) > 0).astype(np.float32)


@dataclass(frozen=True)
class Sign:
    metric_name, higher_is_better, num_outputs = "AUC", True, 1

    def draw(self, n, generator):
        return torch.zeros(n)

    def inputs(self, data, idx, rt, draws=None):
        return torch.from_numpy(data[0][idx]).to(rt.device)

    def targets(self, data, idx, draws=None):
        return torch.from_numpy(data[1][idx])

    def initial_bias(self, data):
        return [0.0]

    def loss_fn(self, out, y):
        return torch.nn.functional.binary_cross_entropy_with_logits(out, y)

    def predict(self, out):
        return 1 / (1 + np.exp(-out))

    def metric(self, pred, data):
        return binary_auc(data[1] > 0, pred)


class Toy(tuple):  # (x, y) with len() and a subset, which is all the engine asks of data
    def __len__(self):
        return len(self[0])


class ToyTask(TaskDefaults):
    name, models, sections = "toy", ("toy",), ("toy", "toy.model", "toy.output")
    predictions_key, results_key = "toy.output.predictions", "toy.output.results_dir"
    path_keys = (predictions_key, results_key)
    remembered = ("train.seed",)  # generate and report use the seed the model was trained with

    def check(self, cfg):
        check_rules(cfg, {"toy.events": COUNT, "toy.test_events": COUNT}, ("toy.model",))

    def check_train(self, cfg):
        pass

    def check_generate(self, cfg):
        check_checkpoint(self.checkpoint(cfg))

    check_report = check_generate

    def splits(self, cfg):
        x, y = simulate(cfg.toy.events, cfg.train.seed)
        cut = len(x) * 4 // 5
        return Toy((x[:cut], y[:cut])), Toy((x[cut:], y[cut:]))

    def load(self, cfg, rt):
        return load_trained(self.checkpoint(cfg), ModelSettings.from_section(cfg.section("toy.model"), "toy.model"),
                            {}, Sign, rt)

    def train(self, cfg, only=None):
        with training_runtime(cfg.train) as rt:
            return [fit("toy", ModelSettings.from_section(cfg.section("toy.model"), "toy.model"), Sign(),
                        *self.splits(cfg), rt, RunSettings.from_config(cfg, self.name), {})]

    def predict(self, cfg, rt):
        (model, objective), (x, _) = self.load(cfg, rt), simulate(cfg.toy.test_events, cfg.train.seed + 1)
        p = objective.predict(predict_outputs(model, objective, Toy((x, x[:, 0])), rt))
        return Predictions(pd.DataFrame({"id": range(len(p)), "p_positive": p}), f"{len(p)} points")

    def evaluate(self, cfg, rt, folder):
        (model, objective), val = self.load(cfg, rt), self.splits(cfg)[1]
        auc = objective.metric(objective.predict(predict_outputs(model, objective, val, rt)), val)
        return Report("toy report", f"validation AUC {auc:.4f}", f"validation AUC {auc:.4f}\n", {"auc": auc}, [])


TASK = ToyTask()
