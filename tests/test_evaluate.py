"""evaluate()'s aggregation, against numbers worked out by hand on a model whose outputs we set."""
from types import SimpleNamespace

import pytest
import torch

from tagger.evaluate import evaluate

OBJECTS = torch.tensor([[1, 1, 2, 2]] * 4)  # (N=4, D=4): two objects per example
PERFECT = torch.tensor([[1.0, 1, 0, 0], [0, 0, 1, 1]])  # (K=2, D): groups = objects, AMI 1
MERGED = torch.tensor([[1.0, 1, 1, 1], [0, 0, 0, 0]])  # everything in one group, AMI 0


class FakeModel:
    """Iteration 1 groups every example perfectly; iteration 2 only examples 0 and 1. The
    corrupted pass costs ``index + 10 * iteration`` for the example at ``index``."""

    config = SimpleNamespace(groups=2)

    def __init__(self):
        self.training, self.seen = True, []

    def eval(self):
        self.training = False

    def train(self, mode=True):
        self.training = mode

    def _index(self, x):  # the inputs carry their example index in every element
        return x[:, 0].long()

    def __call__(self, x, iterations, groups, corrupt, generator):
        assert corrupt and not self.training
        self.seen.append(x.shape[0])
        index = self._index(x).double()  # (B,)
        return SimpleNamespace(costs=torch.stack([index + 10 * t for t in range(1, iterations + 1)]))  # (T, B)

    def infer(self, x, iterations, groups, generator):
        index = self._index(x)
        second = torch.stack([PERFECT if i < 2 else MERGED for i in index.tolist()])  # (B, K, D)
        masks = torch.stack([PERFECT.expand(len(index), 2, 4), second])  # (T=2, B, K, D)
        return SimpleNamespace(masks=masks, reconstructions=None, top=None)


def test_per_iteration_means_over_uneven_batches():
    model = FakeModel()
    features = torch.arange(4.0)[:, None].expand(4, 4).contiguous()  # example i is all i
    result = evaluate(model, features, OBJECTS, iterations=2, batch_size=3)
    assert model.seen == [3, 1] and model.training  # two batches (3 + 1), training mode restored
    # costs: mean over examples of i + 10 t = 1.5 + 10 t
    assert result["denoising_cost"] == pytest.approx([11.5, 21.5], abs=1e-12)
    # AMI: iteration 1 all perfect; iteration 2 two perfect (1) and two merged (0)
    assert result["ami"] == pytest.approx([1.0, 0.5], abs=1e-6)
    # spread over examples (unbiased std): 0, and sqrt(4 * 0.25 / 3)
    assert result["ami_std"] == pytest.approx([0.0, (1 / 3) ** 0.5], abs=1e-6)
    assert result["iterations"] == [1, 2] and result["examples"] == 4 and result["groups"] == 2
    assert "class_error" not in result
    assert not {"mbo", "miou", "overlap_examples"} & result.keys()  # opt-in: training's validation unchanged


def test_mbo_and_miou_per_iteration_skip_examples_without_objects():
    from tagger.evaluate import format_table

    objects = OBJECTS.clone()
    objects[3] = 0  # example 3 has no object: no mBO / mIoU (NaN), FG-ARI 1
    result = evaluate(FakeModel(), torch.arange(4.0)[:, None].expand(4, 4).contiguous(), objects,
                      iterations=2, batch_size=3, overlap=True)
    # iteration 1: all perfect. Iteration 2: examples 0, 1 perfect; example 2 merged, both objects
    # IoU 2/4 with group 0 and 0 with the empty group 1: mBO (0.5 + 0.5) / 2, mIoU (0.5 + 0) / 2
    assert result["mbo"] == pytest.approx([1.0, (1 + 1 + 0.5) / 3], abs=1e-12)
    assert result["miou"] == pytest.approx([1.0, (1 + 1 + 0.25) / 3], abs=1e-12)
    assert result["overlap_examples"] == 3
    assert result["ari"] == pytest.approx([1.0, (1 + 1 + 0 + 1) / 4], abs=1e-12)  # unchanged, example 3 counts 1
    assert result["ami"] == pytest.approx([1.0, 0.75], abs=1e-6)
    table = format_table(result).splitlines()
    assert table[2].startswith("| Denoising cost |") and table[3].startswith("| AMI |")
    assert table[4].startswith("| FG-ARI |")
    assert table[5] == "| mBO | 1.000 | 0.833 |" and table[6] == "| mIoU | 1.000 | 0.750 |"
    nothing = evaluate(FakeModel(), torch.arange(2.0)[:, None].expand(2, 4).contiguous(),
                       torch.zeros(2, 4, dtype=torch.long), iterations=1, overlap=True)
    assert nothing["overlap_examples"] == 0 and all(v != v for v in nothing["mbo"] + nothing["miou"])  # NaN


def test_fg_ari_per_iteration_and_over_named_subsets():
    import numpy as np

    first_two = np.array([True, True, False, False])
    result = evaluate(FakeModel(), torch.arange(4.0)[:, None].expand(4, 4).contiguous(), OBJECTS,
                      iterations=2, batch_size=3, subsets={"first": first_two, "rest": ~first_two})
    # FG-ARI: perfect = 1, merged = 0 (every pair together in the prediction, apart in the truth)
    assert result["ari"] == pytest.approx([1.0, 0.5], abs=1e-12)
    assert result["ari_subsets"]["first"] == {"examples": 2, "ari": pytest.approx([1.0, 1.0], abs=1e-12)}
    assert result["ari_subsets"]["rest"] == {"examples": 2, "ari": pytest.approx([1.0, 0.0], abs=1e-12)}


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_infer_in_batches_joins_the_batches_it_runs(norm):
    from tagger import ModelConfig, Tagger
    from tagger.evaluate import infer_in_batches

    torch.manual_seed(0)
    model = Tagger(ModelConfig(input_size=12, widths=(10, 6, 4), groups=3, channels=3,
                               likelihood="continuous", norm=norm)).eval()
    x = torch.rand(7, 12)  # (N, D): P = 4 pixels of 3 channels
    out = infer_in_batches(model, x, batch_size=3, iterations=2, generator=torch.Generator().manual_seed(5))
    assert out.masks.shape == (2, 7, 3, 4) and out.reconstructions.shape == (2, 7, 3, 12)
    assert out.top.shape[:3] == (2, 7, 3) and out.costs.shape == (2, 7)
    generator = torch.Generator().manual_seed(5)
    by_hand = [model.infer(part, iterations=2, generator=generator) for part in x.split(3)]  # 3 + 3 + 1
    torch.testing.assert_close(out.masks, torch.cat([o.masks for o in by_hand], 1), rtol=0, atol=0)
    torch.testing.assert_close(out.reconstructions, torch.cat([o.reconstructions for o in by_hand], 1),
                               rtol=0, atol=0)
    last = infer_in_batches(model, x, batch_size=3, last_only=True, iterations=2,
                            generator=torch.Generator().manual_seed(5))
    assert last.masks.shape == (1, 7, 3, 4)
    torch.testing.assert_close(last.masks, out.masks[-1:], rtol=0, atol=0)
    torch.testing.assert_close(last.reconstructions, out.reconstructions[-1:], rtol=0, atol=0)
    removed = infer_in_batches(model, x, batch_size=3, iterations=2, remove_groups=(1,),
                               generator=torch.Generator().manual_seed(5))
    assert torch.all(removed.masks[-1, :, 1] == 0)  # passed on to model.infer
