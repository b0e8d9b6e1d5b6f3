namespace Loop.Bench;

using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

/// <summary><c>report</c>: the summary table of every result file given, as Markdown, to stdout and <c>--out</c>.</summary>
public static class Report
{
    public static int Write(BenchArgs args)
    {
        var inputs = args.Get("inputs").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var results = inputs.Where(File.Exists).Select(BenchResult.Load).ToList();
        var text = new StringBuilder();
        text.AppendLine("# Loop benchmarks (`make bench`)");
        text.AppendLine();
        text.AppendLine($"Run {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC on {Environment.ProcessorCount} CPUs ({Cpu()}), {RuntimeInformation.OSDescription}, .NET {Environment.Version}, Docker {Shell("docker", "version --format {{.Server.Version}}")}, wrk {Shell("sh", "-c \"wrk -v 2>&1 | head -1 | cut -d' ' -f2\"")}, Node {Shell("node", "--version")}.");
        text.AppendLine("Every baseline was measured in the same run. Ratio = Loop / baseline.");
        if (args.Get("context", "") is { Length: > 0 } context)
        {
            text.AppendLine(context);
        }
        text.AppendLine();
        text.AppendLine("| | metric | Loop | baseline | ratio | target | verdict |");
        text.AppendLine("|---|---|---|---|---|---|---|");
        var missing = 0;
        foreach (var path in inputs)
        {
            if (!File.Exists(path))
            {
                missing++;
                text.AppendLine($"| {Path.GetFileNameWithoutExtension(path)} | (did not complete: see the log above) | | | | | FAILED |");
                continue;
            }
            foreach (var row in BenchResult.Load(path).Rows)
            {
                text.AppendLine($"| {row.Bench} | {row.Metric} | {row.Loop} | {row.Baseline} | {row.Ratio} | {row.Target} | {row.Verdict} |");
            }
        }
        text.AppendLine();
        text.AppendLine("## What each number includes");
        text.AppendLine();
        foreach (var note in results.SelectMany(r => r.Notes))
        {
            text.AppendLine("- " + note);
        }
        var markdown = text.ToString();
        Console.Out.Write(markdown);
        var output = args.Get("out");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        File.WriteAllText(output, markdown);
        return missing == 0 ? 0 : 1;
    }

    private static string Cpu()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }

    private static string Shell(string file, string arguments)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var output = process.StandardOutput.ReadToEnd().Trim();
            process.WaitForExit(5000);
            return output.Length > 0 ? output : "?";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "?";
        }
    }
}
