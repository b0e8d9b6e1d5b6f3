namespace Loop.Dashboard.Tests;

using System.Runtime.CompilerServices;
using System.Text;
using Loop.Testing;
using Microsoft.Playwright;

/// <summary>A fresh browser context with one page on a daemon. <see cref="RunAsync"/> runs a test's
/// steps and, when one fails, says why: the browser console, the daemon's log and a screenshot.</summary>
public sealed class BrowserSession : IAsyncDisposable
{
    private const int DaemonLogLines = 200;
    private readonly List<string> _console = [];

    private BrowserSession(LoopDaemon daemon, IBrowserContext context, IPage page)
    {
        Daemon = daemon;
        Context = context;
        Page = page;
        page.Console += (_, message) => Record($"console.{message.Type}: {message.Text}");
        page.PageError += (_, error) => Record($"page error: {error}");
        page.RequestFailed += (_, request) => Record($"request failed: {request.Method} {request.Url}: {request.Failure}");
    }

    public LoopDaemon Daemon { get; }
    public IBrowserContext Context { get; }
    public IPage Page { get; }

    /// <param name="storageState">Cookies to start with (<see cref="IBrowserContext.StorageStateAsync"/>), as a session of another context.</param>
    public static async Task<BrowserSession> OpenAsync(IBrowser browser, LoopDaemon daemon, ViewportSize viewport, string? storageState = null)
    {
        var context = await browser.NewContextAsync(new()
        {
            BaseURL = daemon.ApiUrl,
            StorageState = storageState,
            ViewportSize = viewport,
            Locale = "en-US",
            TimezoneId = "UTC",
        });
        return new BrowserSession(daemon, context, await context.NewPageAsync());
    }

    /// <summary>Logs in with the API; the session cookie lands in this context's cookie jar.</summary>
    public async Task LogInThroughApiAsync(string username, string password)
    {
        var response = await Context.APIRequest.PostAsync("/api/auth/login", new() { DataObject = new { username, password } });
        Assert.True(response.Ok, $"POST /api/auth/login answered {response.Status}: {await response.TextAsync()}");
    }

    /// <summary>Whether this context's cookie is a live session on the daemon.</summary>
    public async Task<bool> IsLoggedInAsync()
    {
        var status = await (await Context.APIRequest.GetAsync("/api/auth/status")).JsonAsync();
        return status!.Value.GetProperty("authenticated").GetBoolean();
    }

    /// <summary>Runs the test's steps; a failure is rethrown with what CI needs to see why.</summary>
    public async Task RunAsync(Func<IPage, Task> steps, [CallerMemberName] string test = "")
    {
        try
        {
            await steps(Page);
        }
        catch (Exception error)
        {
            var report = new StringBuilder()
                .AppendLine(error.Message)
                .AppendLine($"--- page: {Page.Url}");
            try
            {
                report.AppendLine($"--- screenshot: {await Screenshots.SaveAsync(Page, "failed-" + test)}");
            }
            catch (PlaywrightException screenshotError)
            {
                report.AppendLine($"--- no screenshot: {screenshotError.Message}");
            }
            report.AppendLine("--- browser console:");
            lock (_console)
            {
                report.AppendLine(_console.Count == 0 ? "(nothing)" : string.Join('\n', _console));
            }
            report.AppendLine(Daemon.ExitCode is { } exitCode ? $"--- loop serve has exited with {exitCode}" : "--- loop serve is running");
            var lines = Daemon.Output.Split('\n');
            report.AppendLine($"--- loop serve output (last {DaemonLogLines} of {lines.Length} lines):")
                .AppendJoin('\n', lines.TakeLast(DaemonLogLines));
            throw new DashboardTestFailure(report.ToString(), error);
        }
    }

    private void Record(string line)
    {
        lock (_console)
        {
            _console.Add(line);
        }
    }

    public async ValueTask DisposeAsync() => await Context.DisposeAsync();
}

public sealed class DashboardTestFailure(string message, Exception inner) : Exception(message, inner);
