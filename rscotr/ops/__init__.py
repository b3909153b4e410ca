from .ms_deform_attn import (RSCoTrMSDeformAttn, compiled_kernel_available, cpu_kernel_available,
                             multi_scale_deformable_attn)

__all__ = ['RSCoTrMSDeformAttn', 'compiled_kernel_available', 'cpu_kernel_available',
           'multi_scale_deformable_attn']
