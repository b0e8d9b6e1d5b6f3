namespace Loop.Bench;

using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

/// <summary>What one wrk run reported.</summary>
public sealed record WrkResult(double RequestsPerSecond, long Requests, double Seconds, double P50Ms, double P99Ms, long Non2xx, string SocketErrors, string Output);

/// <summary>Runs Debian's <c>wrk</c> and parses its report (with --latency).</summary>
public static partial class Wrk
{
    public static async Task<WrkResult> RunAsync(Uri url, int threads, int connections, int seconds, string? script, IReadOnlyDictionary<string, string>? environment, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("wrk") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { $"-t{threads}", $"-c{connections}", $"-d{seconds}s", "--latency", "--timeout", "5s" })
        {
            start.ArgumentList.Add(argument);
        }
        if (script is not null)
        {
            start.ArgumentList.Add("-s");
            start.ArgumentList.Add(script);
        }
        start.ArgumentList.Add(url.ToString());
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        using var process = Process.Start(start) ?? throw new BenchFailure("cannot start wrk (apt-get install -y wrk)");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(seconds + 30));
        await process.WaitForExitAsync(limit.Token);
        var output = await stdout;
        if (process.ExitCode != 0)
        {
            throw new BenchFailure($"wrk exited {process.ExitCode}: {await stderr}{output}");
        }
        var requests = RequestsLine().Match(output);
        var rps = RpsLine().Match(output);
        if (!requests.Success || !rps.Success)
        {
            throw new BenchFailure($"cannot read wrk's report:\n{output}");
        }
        return new WrkResult(
            double.Parse(rps.Groups[1].Value, CultureInfo.InvariantCulture),
            long.Parse(requests.Groups[1].Value, CultureInfo.InvariantCulture),
            Duration(requests.Groups[2].Value),
            Percentile(output, "50%"),
            Percentile(output, "99%"),
            Non2xxLine().Match(output) is { Success: true } non2xx ? long.Parse(non2xx.Groups[1].Value, CultureInfo.InvariantCulture) : 0,
            SocketErrorsLine().Match(output) is { Success: true } errors ? errors.Groups[1].Value.Trim() : "none",
            output);
    }

    private static double Percentile(string output, string label)
    {
        var match = Regex.Match(output, $@"^\s*{Regex.Escape(label)}\s+([\d.]+)(us|ms|s)\s*$", RegexOptions.Multiline);
        return match.Success ? Duration(match.Groups[1].Value + match.Groups[2].Value) * 1000 : throw new BenchFailure($"no {label} latency in wrk's report (--latency)");
    }

    /// <summary>"1.23ms", "850.00us", "10.00s", "1.02m" in seconds.</summary>
    private static double Duration(string text)
    {
        var match = Regex.Match(text, @"^([\d.]+)(us|ms|s|m)$");
        if (!match.Success)
        {
            throw new BenchFailure($"cannot read wrk duration '{text}'");
        }
        var value = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        return match.Groups[2].Value switch { "us" => value / 1e6, "ms" => value / 1e3, "m" => value * 60, _ => value };
    }

    [GeneratedRegex(@"(\d+) requests in ([\d.]+(?:us|ms|s|m)),")]
    private static partial Regex RequestsLine();

    [GeneratedRegex(@"Requests/sec:\s+([\d.]+)")]
    private static partial Regex RpsLine();

    [GeneratedRegex(@"Non-2xx or 3xx responses:\s+(\d+)")]
    private static partial Regex Non2xxLine();

    [GeneratedRegex(@"Socket errors:(.*)")]
    private static partial Regex SocketErrorsLine();
}
