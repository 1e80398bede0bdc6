using System.CommandLine;
using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.IO;
using Attention.Reference.Tensors;

namespace Attention.Cli.Commands;

/// <summary><c>pack --out DIR [--seed S]</c>.</summary>
public static class PackCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliIO io)
    {
        var outOpt = new Option<string>("--out") { Description = "The pack folder to create (must not exist, or be empty).", Required = true };
        var seedOpt = new Option<int>("--seed") { Description = "Seed for the random inputs and parameters.", DefaultValueFactory = _ => 1 };
        var cmd = new Command("pack", "Write a case pack covering every module and variant, with expected outputs from the float64 oracle.")
        {
            outOpt, seedOpt,
        };
        cmd.SetAction(p => io.Guard(() =>
        {
            string target = Path.GetFullPath(p.GetValue(outOpt)!);
            if (File.Exists(target) || (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any()))
                throw new IOException($"'{target}' already exists and is not empty; choose a new folder.");
            string parent = Path.GetDirectoryName(target) ?? ".";
            if (!Directory.Exists(parent)) throw new DirectoryNotFoundException($"Folder '{parent}' does not exist.");
            // Build the whole pack in a temporary folder, then rename it into place.
            string temp = Path.Combine(parent, $".{Path.GetFileName(target)}.{Environment.ProcessId}.tmp");
            try
            {
                int count = Write(temp, p.GetValue(seedOpt));
                if (Directory.Exists(target)) Directory.Delete(target);
                Directory.Move(temp, target);
                io.Out.WriteLine($"wrote {count} cases to {target}");
                return ExitCodes.Ok;
            }
            finally
            {
                if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            }
        }));
        return cmd;
    }

    /// <summary>Writes every module's generated cases into <paramref name="folder"/>; returns the count.</summary>
    public static int Write(string folder, int seed)
    {
        Directory.CreateDirectory(folder);
        int count = 0;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var module in ModelZoo.All)
        {
            foreach (var c in module.Generate(seed))
            {
                if (!names.Add(c.Name)) throw new InvalidOperationException($"Two generated cases are named '{c.Name}'.");
                var dump = new TensorSet<double>("module dump");
                var options = new RunOptions { ModuleOutput = module.IsNetwork ? (n, v) => dump.Set(n, v) : null };
                var expected = module.Run(c.Config, c.Inputs, c.Parameters, options);
                CaseFolder.Write(Path.Combine(folder, c.Name), c, expected);
                if (dump.Count > 0)
                    SafeTensors.Write(Path.Combine(folder, c.Name, CaseFolder.ExpectedDumpFile), dump,
                        new Dictionary<string, string> { [DumpComparer.OrderKey] = string.Join(",", dump.Names) });
                count++;
            }
        }
        return count;
    }
}
