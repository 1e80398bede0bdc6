using Attention.Reference.Kernels;
using Attention.Reference.Tensors;

namespace Attention.Reference.Tests.Kernels;

/// <summary>The one vector-width switch of every fast kernel.</summary>
public sealed class SimdWidthTests
{
    private struct ReadPath : IForBody
    {
        public SimdPath[] Seen;

        public readonly void Invoke(int i) => Seen[i] = SimdWidth.Path;
    }

    [Fact]
    public async Task ForcedPathFollowsTheCallerIntoTheWorkersAndIsRestored()
    {
        Assert.Equal(SimdWidth.Hardware, SimdWidth.Path);
        foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256, SimdPath.Portable })
        {
            var seen = SimdWidth.With(path, () => Compute.WithThreads(2, () =>
            {
                var body = new ReadPath { Seen = new SimdPath[64] };
                Compute.For(64, body);
                return body.Seen;
            }));
            Assert.All(seen, p => Assert.Equal(path, p));
            Assert.Equal(SimdWidth.Hardware, SimdWidth.Path);
        }
        // A child flow inherits the choice; its own change never flows back.
        SimdWidth.Forced = SimdPath.Portable;
        try
        {
            var inner = await Task.Run(() => { var seen = SimdWidth.Path; SimdWidth.Forced = SimdPath.Vector256; return seen; });
            Assert.Equal(SimdPath.Portable, inner);
            Assert.Equal(SimdPath.Portable, SimdWidth.Path);
        }
        finally
        {
            SimdWidth.Forced = null;
        }
    }

    [Fact]
    public void EveryKernelReadsTheOneSwitch()
    {
        // No fast kernel keeps a switch of its own: the conv tuning's path and SE's width are the shared one.
        SimdWidth.With(SimdPath.Portable, () =>
        {
            Assert.Equal(SimdPath.Portable, Attention.Reference.Kernels.Conv.Conv2dTuning.Path);
            return 0;
        });
        SimdWidth.With(SimdPath.Vector512, () =>
        {
            Assert.Equal(SimdPath.Vector512, Attention.Reference.Kernels.Conv.Conv2dTuning.Path);
            return 0;
        });
    }
}
