using System.Text;
using Attention.Reference.IO;
using Attention.Reference.Tensors;
using Attention.Reference.Tests.Support;

namespace Attention.Reference.Tests.IO;

public class NpyTests
{
    private static byte[] Npy1(string dict, byte[] data)
    {
        string header = dict.PadRight(118) + "\n";
        var bytes = new List<byte> { 0x93 };
        bytes.AddRange("NUMPY"u8.ToArray());
        bytes.Add(1); bytes.Add(0);
        bytes.Add((byte)(header.Length & 0xff)); bytes.Add((byte)(header.Length >> 8));
        bytes.AddRange(Encoding.ASCII.GetBytes(header));
        bytes.AddRange(data);
        return bytes.ToArray();
    }

    [Theory]
    [InlineData(null)]
    [InlineData(2)]
    public void RoundTripsFloat64(int? version)
    {
        var t = new DenseTensor<double>([1, -2.5, Math.E, 0, -0.0, 1e-310], 2, 3);
        var bytes = Npy.Serialize(t, version);
        Assert.Equal(version ?? 1, bytes[6]);
        Assert.Equal(0, (bytes.Length - t.Length * 8) % 64);
        var back = Npy.Parse(bytes, "t");
        Assert.Equal(StoredDType.F64, back.DType);
        Bitwise.AssertIdentical(t, back.ToTensor<double>(), "t");
    }

    [Fact]
    public void RoundTripsFloat32AndVectorsAndScalars()
    {
        var v = new DenseTensor<float>([0.1f, 0.2f, 0.3f], 3);
        Bitwise.AssertIdentical(v, Npy.Parse(Npy.Serialize(v), "v").ToTensor<float>(), "v");
        Assert.Contains("'shape': (3,)", Encoding.Latin1.GetString(Npy.Serialize(v)));
        var s = new DenseTensor<double>([7.0]);
        Assert.Empty(Npy.Parse(Npy.Serialize(s), "s").Shape);
    }

    [Fact]
    public void ReadsNumpyStyleHeader()
    {
        var data = BitConverter.GetBytes(2.0).Concat(BitConverter.GetBytes(3.0)).ToArray();
        var t = Npy.Parse(Npy1("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", data), "t");
        Assert.Equal([2.0, 3.0], t.Values);
    }

    [Fact]
    public void RefusesFortranOrder() =>
        Assert.Contains("Fortran-order", Assert.Throws<InvalidDataException>(() =>
            Npy.Parse(Npy1("{'descr': '<f8', 'fortran_order': True, 'shape': (1, 1), }", new byte[8]), "t")).Message);

    [Theory]
    [InlineData("<i4")]
    [InlineData(">f8")]
    [InlineData("<f2")]
    [InlineData("|b1")]
    public void RefusesOtherDTypes(string descr) =>
        Assert.Contains($"dtype '{descr}' is not supported", Assert.Throws<InvalidDataException>(() =>
            Npy.Parse(Npy1($"{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}", new byte[8]), "t")).Message);

    [Fact]
    public void RefusesBadMagicTruncationAndVersion3()
    {
        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => Npy.Parse(new byte[20], "t")).Message);
        Assert.Contains("needs 16 data bytes, the file has 8", Assert.Throws<InvalidDataException>(() =>
            Npy.Parse(Npy1("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", new byte[8]), "t")).Message);
        var v3 = Npy1("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", new byte[8]);
        v3[6] = 3;
        Assert.Contains("version 3.0", Assert.Throws<InvalidDataException>(() => Npy.Parse(v3, "t")).Message);
        Assert.Contains("not a dict", Assert.Throws<InvalidDataException>(() => Npy.Parse(Npy1("{'descr': '<f8'}", new byte[8]), "t")).Message);
    }
}
