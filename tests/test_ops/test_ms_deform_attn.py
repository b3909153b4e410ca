import pytest
import torch
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

from rscotr.ops import RSCoTrMSDeformAttn, compiled_kernel_available, multi_scale_deformable_attn


def _inputs(bs=2, heads=4, dims=8, shapes=((12, 10), (6, 5), (3, 3)), num_query=7, points=3,
            requires_grad=False):
    spatial_shapes = torch.tensor(shapes, dtype=torch.long)
    level_start_index = torch.cat((spatial_shapes.new_zeros(1),
                                   spatial_shapes.prod(1).cumsum(0)[:-1]))
    num_value = int(spatial_shapes.prod(1).sum())
    value = torch.randn(bs, num_value, heads, dims, dtype=torch.double, requires_grad=requires_grad)
    # include locations outside [0, 1] to exercise zero padding
    loc = (torch.rand(bs, num_query, heads, len(shapes), points, 2, dtype=torch.double) * 1.2 - 0.1)
    loc.requires_grad_(requires_grad)
    w = torch.rand(bs, num_query, heads, len(shapes), points, dtype=torch.double)
    w = (w / w.sum((-1, -2), keepdim=True)).requires_grad_(requires_grad)
    return value, spatial_shapes, level_start_index, loc, w


def test_no_compiled_kernel_on_cpu():
    assert not compiled_kernel_available(torch.device('cpu'))


def test_dispatch_equals_mmcv_reference_on_cpu():
    value, shapes, start, loc, w = _inputs()
    ours = multi_scale_deformable_attn(value, shapes, start, loc, w)
    ref = multi_scale_deformable_attn_pytorch(value, shapes, loc, w)
    assert ours.shape == (2, 7, 4 * 8)
    assert torch.allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize('ref_dim', [2, 4])
def test_module_equals_mmcv_module(ref_dim):
    """Our attention module matches mmcv's own module with the same weights."""
    from mmcv.ops import MultiScaleDeformableAttention
    torch.manual_seed(0)
    kw = dict(embed_dims=32, num_heads=4, num_levels=2, num_points=3, batch_first=True,
              dropout=0.0)
    ours, theirs = RSCoTrMSDeformAttn(**kw), MultiScaleDeformableAttention(**kw)
    theirs.load_state_dict(ours.state_dict())
    shapes = torch.tensor([[8, 6], [4, 3]])
    start = torch.tensor([0, 48])
    query = torch.randn(2, 5, 32)
    value = torch.randn(2, 60, 32)
    ref_pts = torch.rand(2, 5, 2, ref_dim)
    mask = torch.zeros(2, 60, dtype=torch.bool)
    mask[1, 40:] = True
    args = dict(query=query, value=value, reference_points=ref_pts, spatial_shapes=shapes,
                level_start_index=start, key_padding_mask=mask)
    assert torch.allclose(ours(**args), theirs(**args), atol=1e-5)


def test_module_gradients_flow():
    attn = RSCoTrMSDeformAttn(embed_dims=16, num_heads=2, num_levels=1, num_points=2,
                              batch_first=True)
    q = torch.randn(1, 6, 16, requires_grad=True)
    out = attn(q, value=torch.randn(1, 12, 16), reference_points=torch.rand(1, 6, 1, 2),
               spatial_shapes=torch.tensor([[3, 4]]), level_start_index=torch.tensor([0]))
    out.sum().backward()
    assert q.grad is not None and attn.sampling_offsets.weight.grad is not None


def test_bad_reference_points():
    attn = RSCoTrMSDeformAttn(embed_dims=16, num_heads=2, num_levels=1, num_points=2,
                              batch_first=True)
    with pytest.raises(ValueError, match='reference_points'):
        attn(torch.randn(1, 6, 16), value=torch.randn(1, 12, 16),
             reference_points=torch.rand(1, 6, 1, 3), spatial_shapes=torch.tensor([[3, 4]]),
             level_start_index=torch.tensor([0]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_path_equals_cpu():
    value, shapes, start, loc, w = _inputs()
    cpu = multi_scale_deformable_attn(value.float(), shapes, start, loc.float(), w.float())
    gpu = multi_scale_deformable_attn(value.float().cuda(), shapes.cuda(), start.cuda(),
                                      loc.float().cuda(), w.float().cuda())
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-4)
