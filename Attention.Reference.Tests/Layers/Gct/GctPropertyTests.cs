using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.Ops;
using FsCheck;
using FsCheck.Xunit;

namespace Attention.Reference.Tests.Layers.Gct;

/// <summary>FsCheck properties of GCT named in the issue.</summary>
public sealed class GctPropertyTests
{
    private static readonly ModelFactory Gct = ModelZoo.Get("gct");
    private static readonly string[] Modes = ["l2", "l1", "l1+relu"];

    /// <summary>A random problem whose shape, mode and value scale come from FsCheck's inputs.</summary>
    private static GeneratedCase Problem(int seed, byte shape, byte modeIndex, NormalFloat scale)
    {
        string mode = Modes[modeIndex % 3];
        bool afterRelu = mode == "l1+relu";
        int n = 1 + shape % 3, c = 1 + shape / 3 % 6, h = 1 + shape / 18 % 4, w = 1 + shape / 72 % 3;
        var gc = GctTestData.Case(seed, afterRelu ? "l1" : mode, afterRelu, n, c, h, w);
        // Scale x by a power of ten in [1e-3, 1e3] so sums and norms cover several magnitudes.
        double factor = Math.Pow(10, Math.Clamp(scale.Get, -3, 3));
        var x = gc.Inputs.Get("x");
        for (int i = 0; i < x.Length; i++) x.Data[i] *= factor;
        return gc;
    }

    [Property(MaxTest = 60)]
    public bool ZeroGammaAndBetaGiveTheIdentityAndAZeroAlphaGradient(int seed, byte shape, byte mode, NormalFloat scale)
    {
        var gc = Problem(seed, shape, mode, scale);
        Array.Clear(gc.Parameters.Get("gamma").Data);
        Array.Clear(gc.Parameters.Get("beta").Data);
        foreach (bool single in new[] { false, true })
        {
            if (!single)
            {
                var o = Gct.Run(gc.Config, gc.Inputs, gc.Parameters, RunOptions.Default);
                if (!o.Get("y").Data.SequenceEqual(gc.Inputs.Get("x").Data)) return false;
                if (!o.Get("alpha.grad").Data.All(v => v == 0)) return false;
                if (!o.Get("gamma.grad").Data.All(double.IsFinite)) return false;
            }
            else
            {
                var o = Gct.Run(gc.Config, gc.Inputs.Cast<float>(), gc.Parameters.Cast<float>(), RunOptions.Default);
                if (!o.Get("y").Data.SequenceEqual(gc.Inputs.Cast<float>().Get("x").Data)) return false;
                if (!o.Get("alpha.grad").Data.All(v => v == 0)) return false;
            }
        }
        return true;
    }

    [Property(MaxTest = 60)]
    public bool GateStaysInZeroToTwo(int seed, byte shape, byte mode, NormalFloat scale, NormalFloat gammaScale, NormalFloat betaShift)
    {
        var gc = Problem(seed, shape, mode, scale);
        // γ and β over a wide range, saturating tanh in both directions.
        double gs = Math.Clamp(gammaScale.Get, -1e6, 1e6), bs = Math.Clamp(betaShift.Get, -1e6, 1e6);
        var gamma = gc.Parameters.Get("gamma").Data;
        var beta = gc.Parameters.Get("beta").Data;
        for (int i = 0; i < gamma.Length; i++) { gamma[i] *= gs; beta[i] += bs; }
        var m = GctTestData.Module<double>(gc);
        var fw = m.Forward(gc.Inputs.Get("x"));
        return fw.Gate.Data.All(g => g >= 0 && g <= 2);
    }

    [Property(MaxTest = 30)]
    public bool OracleMatchesOracleInFloat32WithinRounding(int seed, byte shape, byte mode)
    {
        // The generic oracle in float32 agrees with float64 to float32 rounding (a sanity check of genericity).
        var gc = Problem(seed, shape, mode, NormalFloat.NewNormalFloat(0));
        var m64 = GctTestData.Module<double>(gc);
        var m32 = GctTestData.Module<float>(gc);
        var x32 = gc.Inputs.Get("x").Cast<float>();
        var y64 = m64.Forward(x32.Cast<double>()).Y;
        var y32 = m32.Forward(x32).Y;
        return GctTestData.RelMaxError(y64, y32) < 1e-5;
    }

    [Property(MaxTest = 40)]
    public bool FastPathAgreesWithTheOracle(int seed, byte shape, byte mode, NormalFloat scale)
    {
        // y and x.grad of the float32 fast path against the float64 oracle on the same float32-rounded inputs, relative
        // to each tensor's max |e|. (Parameter gradients are held to the oracle in GctFastTests on fixed problems: they
        // sum over samples and can cancel, which a per-tensor bound does not capture for arbitrary draws.)
        var gc = Problem(seed, shape, mode, scale);
        var inputs32 = gc.Inputs.Cast<float>();
        var params32 = gc.Parameters.Cast<float>();
        var expected = Gct.Run(gc.Config, inputs32.Cast<double>(), params32.Cast<double>(), RunOptions.Default);
        var actual = Gct.Run(gc.Config, inputs32, params32, RunOptions.Default);
        return GctTestData.RelMaxError(expected.Get("y"), actual.Get("y")) <= 1e-6
               && GctTestData.RelMaxError(expected.Get("x.grad"), actual.Get("x.grad")) <= 1e-6;
    }
}
