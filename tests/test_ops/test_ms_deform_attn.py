import pytest
import torch
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

from rscotr.ops import RSCoTrMSDeformAttn, compiled_kernel_available, multi_scale_deformable_attn
from rscotr.ops.ms_deform_attn import MSDeformAttnCPUFunction, cpu_kernel_available


def _inputs(bs=2, heads=4, dims=8, shapes=((12, 10), (6, 5), (3, 3)), num_query=7, points=3,
            requires_grad=False, dtype=torch.double):
    spatial_shapes = torch.tensor(shapes, dtype=torch.long)
    level_start_index = torch.cat((spatial_shapes.new_zeros(1),
                                   spatial_shapes.prod(1).cumsum(0)[:-1]))
    num_value = int(spatial_shapes.prod(1).sum())
    value = torch.randn(bs, num_value, heads, dims, dtype=dtype, requires_grad=requires_grad)
    # include locations outside [0, 1] to exercise zero padding
    loc = (torch.rand(bs, num_query, heads, len(shapes), points, 2, dtype=dtype) * 1.2 - 0.1)
    loc.requires_grad_(requires_grad)
    w = torch.rand(bs, num_query, heads, len(shapes), points, dtype=dtype)
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


# ---------------------------------------------------------------- our CPU kernel
def _kernel_and_reference(value, shapes, start, loc, w, grad=None):
    """Outputs and (value, location, weight) gradients of our kernel and of mmcv's reference."""
    results = []
    for backend in ('cpu', 'pytorch'):
        leaves = [t.detach().requires_grad_() for t in (value, loc, w)]  # keeps the strides
        out = multi_scale_deformable_attn(leaves[0], shapes, start, leaves[1], leaves[2],
                                          backend=backend)
        out.backward(torch.ones_like(out) if grad is None else grad)
        results.append((out.detach(), *(t.grad for t in leaves)))
    return results


def _assert_close(ours, ref, atol, rtol):
    for name, a, b in zip(('output', 'grad_value', 'grad_locations', 'grad_weights'), ours, ref):
        assert a.shape == b.shape, name
        scale = b.abs().max().item()
        err = (a - b).abs().max().item()
        assert err <= atol + rtol * scale, f'{name}: max error {err:.3g} (scale {scale:.3g})'


def test_cpu_kernel_is_built():
    """The install step always builds the kernel: a broken build must fail here, loudly."""
    assert cpu_kernel_available(), (
        'rscotr.ops._ms_deform_attn_cpu is missing: rebuild with '
        '`pip install --no-deps --no-build-isolation --use-pep517 -e .` (see tools/install.sh)')


needs_kernel = pytest.mark.skipif(not cpu_kernel_available(), reason='CPU kernel not built')


@needs_kernel
def test_auto_dispatch_uses_cpu_kernel(monkeypatch):
    monkeypatch.delenv('RSCOTR_MSDA_BACKEND', raising=False)
    value, shapes, start, loc, w = _inputs(requires_grad=True)
    out = multi_scale_deformable_attn(value, shapes, start, loc, w)
    assert out.grad_fn.name() == MSDeformAttnCPUFunction.__name__ + 'Backward'
    # forcing the reference, by argument or environment
    out = multi_scale_deformable_attn(value, shapes, start, loc, w, backend='pytorch')
    assert out.grad_fn.name() != MSDeformAttnCPUFunction.__name__ + 'Backward'
    monkeypatch.setenv('RSCOTR_MSDA_BACKEND', 'pytorch')
    out = multi_scale_deformable_attn(value, shapes, start, loc, w)
    assert out.grad_fn.name() != MSDeformAttnCPUFunction.__name__ + 'Backward'


def test_backend_errors():
    value, shapes, start, loc, w = _inputs()
    with pytest.raises(ValueError, match='backend'):
        multi_scale_deformable_attn(value, shapes, start, loc, w, backend='triton')
    with pytest.raises(RuntimeError, match="'cuda'"):
        multi_scale_deformable_attn(value, shapes, start, loc, w, backend='cuda')
    with pytest.raises(RuntimeError, match="'cpu'"):
        multi_scale_deformable_attn(value.to('meta'), shapes, start, loc.to('meta'),
                                    w.to('meta'), backend='cpu')


@needs_kernel
def test_half_inputs_are_sampled_in_float32():
    """Mixed precision: half inputs are cast up, so the CPU kernel runs them; the
    output comes back in the input's dtype."""
    value, shapes, start, loc, w = _inputs(dtype=torch.float)
    expected = multi_scale_deformable_attn(value, shapes, start, loc, w)
    out = multi_scale_deformable_attn(value.half(), shapes, start, loc.half(), w.half(),
                                      backend='cpu')
    assert out.dtype == torch.float16
    assert torch.allclose(out.float(), expected, atol=1e-2)


@needs_kernel
def test_cpu_kernel_gradcheck():
    torch.manual_seed(0)
    value, shapes, start, loc, w = _inputs(bs=1, heads=2, dims=3, shapes=((4, 3), (2, 2)),
                                           num_query=3, points=2, requires_grad=True)
    assert torch.autograd.gradcheck(MSDeformAttnCPUFunction.apply, (value, shapes, start, loc, w),
                                    eps=1e-6, atol=1e-5)


@needs_kernel
@pytest.mark.parametrize('bs', [1, 3])
@pytest.mark.parametrize('dims', [8, 32])  # 32 runs the fixed-size instance of the kernel
def test_cpu_kernel_equals_reference_float64(bs, dims):
    torch.manual_seed(bs)
    inputs = _inputs(bs=bs, dims=dims, shapes=((12, 10), (6, 5), (3, 3), (1, 2)), num_query=9)
    grad = torch.randn(bs, 9, 4 * dims, dtype=torch.double)
    ours, ref = _kernel_and_reference(*inputs, grad=grad)
    _assert_close(ours, ref, atol=1e-10, rtol=1e-10)


@needs_kernel
def test_cpu_kernel_equals_reference_float32_medium():
    torch.manual_seed(0)
    inputs = _inputs(bs=2, heads=8, dims=32, shapes=((40, 40), (20, 20), (10, 10), (5, 5)),
                     num_query=300, points=4, dtype=torch.float)
    grad = torch.randn(2, 300, 8 * 32)
    ours, ref = _kernel_and_reference(*inputs, grad=grad)
    _assert_close(ours[:1], ref[:1], atol=1e-4, rtol=0)
    _assert_close(ours[1:], ref[1:], atol=0, rtol=1e-3)


@needs_kernel
def test_cpu_kernel_borders_and_outside():
    """Samples on pixel centres, on the level borders, just outside and far outside."""
    shapes = torch.tensor([[4, 8], [2, 2]])
    start = torch.tensor([0, 32])
    # x * size - 0.5 = -1 (outside, its right neighbour inside), -0.5 (left border),
    # 0 and 2 (pixel centres), size - 0.5 (right border), size (outside), far away
    coords = torch.tensor([-0.5, 0.0, 0.5, 2.5, 8.0, 8.5, 1e4, -1e4], dtype=torch.double)
    xs = coords / 8
    loc = torch.stack(torch.meshgrid(xs, xs, indexing='ij'), -1).reshape(1, -1, 1, 1, 1, 2)
    loc = loc.expand(1, -1, 2, 2, 1, 2).contiguous()
    num_query = loc.shape[1]
    torch.manual_seed(0)
    value = torch.randn(1, 36, 2, 4, dtype=torch.double)
    w = torch.rand(1, num_query, 2, 2, 1, dtype=torch.double)
    ours, ref = _kernel_and_reference(value, shapes, start, loc, w)
    _assert_close(ours, ref, atol=1e-12, rtol=1e-12)
    assert ours[0].abs().sum() > 0 and ours[2].abs().sum() > 0


@needs_kernel
def test_cpu_kernel_non_contiguous_inputs():
    torch.manual_seed(0)
    value, shapes, start, loc, w = _inputs(bs=2, dims=8)
    # same numbers, other memory layouts
    value_nc = value.transpose(1, 2).contiguous().transpose(1, 2)
    loc_nc = loc.transpose(0, 1).contiguous().transpose(0, 1)
    w_nc = torch.stack((w, w), -1)[..., 0]
    assert not (value_nc.is_contiguous() or loc_nc.is_contiguous() or w_nc.is_contiguous())
    grad = torch.randn(7, 2, 32, dtype=torch.double).transpose(0, 1)
    ours, _ = _kernel_and_reference(value_nc, shapes, start, loc_nc, w_nc, grad=grad)
    _, ref = _kernel_and_reference(value, shapes, start, loc, w, grad=grad.contiguous())
    _assert_close(ours, ref, atol=1e-10, rtol=1e-10)


@needs_kernel
def test_cpu_kernel_thread_count_does_not_change_results():
    torch.manual_seed(0)
    inputs = _inputs(bs=2, heads=4, dims=32, num_query=600, dtype=torch.float)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single, _ = _kernel_and_reference(*inputs)
    finally:
        torch.set_num_threads(threads)
    multi, _ = _kernel_and_reference(*inputs)
    for a, b in zip(single, multi):
        assert torch.equal(a, b)


@needs_kernel
def test_cpu_kernel_rejects_bad_inputs():
    from rscotr.ops import _ms_deform_attn_cpu as ext
    value, shapes, start, loc, w = _inputs()
    with pytest.raises(RuntimeError, match='attention_weights'):
        ext.forward(value, shapes, start, loc, w[..., :2])
    with pytest.raises(RuntimeError, match='does not fit'):
        ext.forward(value, shapes * 2, start, loc, w)
    with pytest.raises(RuntimeError, match='dtype'):
        ext.forward(value.float(), shapes, start, loc, w)
