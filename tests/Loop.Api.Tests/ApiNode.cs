namespace Loop.Api.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Loop.Config;
using Loop.Hosting;
using Loop.Runtime;
using Loop.Testing;
using Microsoft.Extensions.Logging;

[CollectionDefinition(Name)]
public sealed class ApiNodeCollection : ICollectionFixture<ApiNode>
{
    public const string Name = "api node";
}

/// <summary>
/// One Loop node in this process, serving its API on a loopback port as <c>loop serve</c> does, so a
/// test can both call it over HTTP and read what it holds (its route table). Agents would run with
/// the process runner; these tests start none.
/// </summary>
public sealed class ApiNode : IAsyncLifetime
{
    public const string Username = "admin";
    public const string Password = "correct horse battery";

    private readonly string _home = Directory.CreateTempSubdirectory("loop-api-").FullName;

    public LoopHost Host { get; private set; } = null!;
    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>Calls as a program on this machine does: with the local token.</summary>
    public HttpClient User { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var paths = new LoopPaths(_home, _home);
        var port = LoopDaemon.FreePort();
        // Tests call faster than a person would: no rate limit, as for the tests' daemons.
        var config = LoopConfig.Defaults(paths) with { ApiAddr = $"127.0.0.1:{port}", Runner = RunnerKind.Process, ApiRateLimitPerMinute = 0 };
        Host = LoopHost.Build(new LoopNodeOptions(config, paths, "api-test-node"), TimeProvider.System,
            logging => logging.SetMinimumLevel(LogLevel.Warning).AddSimpleConsole(o => o.SingleLine = true));
        await Host.StartAsync(CancellationToken.None);
        BaseAddress = new Uri($"http://127.0.0.1:{port}");
        User = Anonymous();
        User.DefaultRequestHeaders.Authorization = new("Bearer", (await File.ReadAllTextAsync(paths.LocalTokenFile)).Trim());
    }

    /// <summary>A client with no credentials (and no redirects followed).</summary>
    public HttpClient Anonymous() =>
        new(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = BaseAddress };

    /// <summary>A browser's view: logs in as the admin (made on first use) and keeps the session cookie.</summary>
    public async Task<HttpClient> LoggedInBrowserAsync()
    {
        var browser = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() }) { BaseAddress = BaseAddress };
        var status = (await browser.GetFromJsonAsync<JsonObject>("/api/auth/status"))!;
        if ((bool)status["setup_required"]!)
        {
            var code = (await File.ReadAllTextAsync(new LoopPaths(_home, _home).SetupCodeFile)).Trim();
            using var setup = await browser.PostAsJsonAsync("/api/auth/setup", new { username = Username, password = Password, setup_code = code });
            Assert.True(setup.IsSuccessStatusCode, await setup.Content.ReadAsStringAsync());
        }
        using var login = await browser.PostAsJsonAsync("/api/auth/login", new { username = Username, password = Password });
        Assert.True(login.IsSuccessStatusCode, await login.Content.ReadAsStringAsync());
        return browser;
    }

    public async Task DisposeAsync()
    {
        User.Dispose();
        await Host.DisposeAsync();
        try
        {
            Directory.Delete(_home, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
