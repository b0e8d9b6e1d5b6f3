namespace Loop.Dashboard.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Loop.Testing;
using Microsoft.Playwright;

[CollectionDefinition(Name)]
public sealed class DashboardCollection : ICollectionFixture<DashboardFixture>
{
    public const string Name = "dashboard";
}

/// <summary>One real <c>loop serve</c> and one headless Debian chromium for every dashboard test.
/// Each test opens its own <see cref="BrowserSession"/> (a fresh browser context).</summary>
public sealed class DashboardFixture : IAsyncLifetime
{
    public const string Username = "admin";
    public const string Password = "correct horse battery";

    /// <summary>Not the default (3), so the runtime page is seen to read it from the config.</summary>
    public const int MaxConcurrentContainers = 2;

    /// <summary>Debian's chromium (apt package `chromium`): nothing is downloaded.</summary>
    public const string ChromiumPath = "/usr/bin/chromium";

    public static readonly ViewportSize Desktop = new() { Width = 1280, Height = 800 };
    public static readonly ViewportSize Phone = new() { Width = 390, Height = 844 };

    /// <summary>The admin's session on each daemon (its cookie), which the tests share while it lasts.</summary>
    private readonly Dictionary<LoopDaemon, string> _adminSessions = [];
    private IPlaywright? _playwright;
    private IBrowser? _browser;
    private LoopDaemon? _daemon;
    private AnthropicDouble? _anthropic;

    public LoopDaemon Daemon => _daemon ?? throw new InvalidOperationException("the fixture is not initialized");

    /// <summary>The Messages API the daemon's channels in direct mode call.</summary>
    public AnthropicDouble Anthropic => _anthropic ?? throw new InvalidOperationException("the fixture is not initialized");
    public IBrowser Browser => _browser ?? throw new InvalidOperationException("the fixture is not initialized");

    public async Task InitializeAsync()
    {
        Assert.True(File.Exists(ChromiumPath), $"{ChromiumPath} is missing: run scripts/provision-test-env.sh (it installs the Debian package chromium)");
        // Anything that waits on a container run passes its own, longer timeout.
        Assertions.SetDefaultExpectTimeout(10_000);
        Screenshots.ClearFailures();
        _anthropic = await AnthropicDouble.StartAsync();
        _daemon = await LoopDaemon.StartAsync(
            new JsonObject { ["max_concurrent_containers"] = MaxConcurrentContainers, ["anthropic_base_url"] = _anthropic.BaseUrl },
            new Dictionary<string, string?> { ["ANTHROPIC_API_KEY"] = AnthropicDouble.ApiKey });
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
        });
    }

    /// <summary>A fresh browser context on <paramref name="daemon"/> (the shared one unless given),
    /// logged in as the admin when <paramref name="loggedIn"/>. The daemon allows 10 logins a minute
    /// from one client, and every test is that client: they share the admin's session until one
    /// ends it (logging out), and the next logs in again.</summary>
    public async Task<BrowserSession> OpenAsync(bool loggedIn = true, ViewportSize? viewport = null, LoopDaemon? daemon = null)
    {
        daemon ??= Daemon;
        var shared = loggedIn ? _adminSessions.GetValueOrDefault(daemon) : null;
        var session = await BrowserSession.OpenAsync(Browser, daemon, viewport ?? Desktop, shared);
        if (loggedIn && !await session.IsLoggedInAsync())
        {
            await EnsureAdminAsync(daemon);
            await session.LogInThroughApiAsync(Username, Password);
            _adminSessions[daemon] = await session.Context.StorageStateAsync();
        }
        return session;
    }

    /// <summary>Creates the admin account unless the setup was done already (by another test, or
    /// through the setup page), so tests do not depend on their order.</summary>
    public static async Task EnsureAdminAsync(LoopDaemon daemon)
    {
        using var anonymous = new HttpClient { BaseAddress = new Uri(daemon.ApiUrl) };
        var status = await LoopDaemon.ReadObjectAsync(await anonymous.GetAsync("/api/auth/status"), HttpStatusCode.OK);
        if ((bool)status["setup_required"]!)
        {
            using var setup = await anonymous.PostAsJsonAsync("/api/auth/setup", new { username = Username, password = Password, setup_code = daemon.SetupCode });
            await LoopDaemon.ReadObjectAsync(setup, HttpStatusCode.Created, HttpStatusCode.Conflict);
        }
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }
        _playwright?.Dispose();
        if (_daemon is not null)
        {
            await _daemon.DisposeAsync();
        }
        if (_anthropic is not null)
        {
            await _anthropic.DisposeAsync();
        }
    }
}
