using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Attention.Reference.Kernels.Conv;
using Attention.Reference.Ops;

namespace Attention.Reference.Tests.Kernels.Conv;

/// <summary>The weight gradient's sixteen-at-once lane reduction against the one-accumulator tree, bit for bit.</summary>
public sealed class LaneReductionTests
{
    [SkippableFact]
    public void SixteenAccumulatorsReduceExactlyAsEachAlone()
    {
        Skip.IfNot(Avx512F.IsSupported, "the sixteen-at-once reduction is AVX-512 shuffles; this CPU has no AVX-512 (elsewhere the tree runs one accumulator at a time)");
        var rng = new Random(12);
        for (int round = 0; round < 200; round++)
        {
            var v = new Vector512<float>[16];
            for (int i = 0; i < 16; i++)
            {
                var lanes = new float[16];
                for (int l = 0; l < 16; l++)
                {
                    // Magnitudes 2^±20 so that any other pairing rounds differently; now and then −0, ±∞ or NaN.
                    lanes[l] = (float)((rng.NextDouble() * 2 - 1) * Math.Pow(2, rng.Next(-20, 21)));
                    int special = rng.Next(200);
                    if (special == 0) lanes[l] = -0f;
                    else if (special == 1) lanes[l] = float.PositiveInfinity;
                    else if (special == 2) lanes[l] = float.NaN;
                }
                v[i] = Vector512.Create(lanes);
            }
            var r = Conv2dFast<float>.ReduceSixteen(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11],
                v[12], v[13], v[14], v[15]);
            for (int lane = 0; lane < 16; lane++)
            {
                float alone = Conv2dFast<float>.Reduce(v[Conv2dFast<float>.SixteenOrder[lane]]);
                Assert.Equal(BitConverter.SingleToInt32Bits(alone), BitConverter.SingleToInt32Bits(r[lane]));
            }
        }
    }
}
