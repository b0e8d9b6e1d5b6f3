namespace Loop.Integration.Tests;

using Loop.Testing;

using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

/// <summary>Accounts, sessions, API tokens and rate limits through a real <c>loop serve</c>.</summary>
public sealed class AuthTests
{
    private const string Password = "correct horse battery";

    [Fact]
    public async Task Setup_happens_once_then_login_sets_a_session_cookie_and_logout_ends_it()
    {
        await using var loop = await LoopDaemon.StartAsync();
        using var browser = Anonymous(loop, out var cookies);

        var before = await ReadAsync(await browser.GetAsync("/api/auth/status"), HttpStatusCode.OK);
        Assert.True((bool)before["setup_required"]!);
        Assert.False((bool)before["authenticated"]!);

        var admin = await ReadAsync(await browser.PostAsJsonAsync("/api/auth/setup", new { username = "admin", password = Password, setup_code = loop.SetupCode }), HttpStatusCode.Created);
        Assert.Equal("admin", (string)admin["username"]!);
        var again = await ReadAsync(await browser.PostAsJsonAsync("/api/auth/setup", new { username = "mallory", password = "another password" }), HttpStatusCode.Conflict);
        Assert.Contains("set up already", (string)again["detail"]!);
        Assert.False((bool)(await ReadAsync(await browser.GetAsync("/api/auth/status"), HttpStatusCode.OK))["setup_required"]!);

        // Wrong password and unknown user get the same answer.
        var wrong = await ReadAsync(await browser.PostAsJsonAsync("/api/auth/login", new { username = "admin", password = "wrong password" }), HttpStatusCode.Unauthorized);
        Assert.Equal("wrong username or password", (string)wrong["detail"]!);
        await ReadAsync(await browser.PostAsJsonAsync("/api/auth/login", new { username = "mallory", password = Password }), HttpStatusCode.Unauthorized);
        await ReadAsync(await browser.GetAsync("/api/channels"), HttpStatusCode.Unauthorized);

        using var login = await browser.PostAsJsonAsync("/api/auth/login", new { username = "admin", password = Password });
        var session = await ReadAsync(login, HttpStatusCode.OK);
        var token = (string)session["token"]!;
        var setCookie = Assert.Single(login.Headers.GetValues("Set-Cookie")).ToLowerInvariant();
        Assert.StartsWith("loop_session=", setCookie);
        Assert.Contains("httponly", setCookie);
        Assert.Contains("samesite=strict", setCookie);
        Assert.DoesNotContain("secure", setCookie); // plain http on loopback

        // The cookie works, and the same token works as a bearer.
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/api/channels")).StatusCode);
        var status = await ReadAsync(await browser.GetAsync("/api/auth/status"), HttpStatusCode.OK);
        Assert.True((bool)status["authenticated"]!);
        Assert.Equal("admin", (string)status["username"]!);
        using var script = Anonymous(loop, out _);
        script.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        Assert.Equal(HttpStatusCode.OK, (await script.GetAsync("/api/channels")).StatusCode);

        // The store keeps a PBKDF2 hash of the password and only hashes of tokens.
        var stored = StoredBytes(loop);
        Assert.Contains("pbkdf2-sha256$210000$", stored);
        Assert.DoesNotContain(Password, stored);
        Assert.DoesNotContain(token, stored);
        Assert.DoesNotContain(loop.LocalToken, stored);

        // The dashboard's own page asks (a browser sends its Origin).
        using var logout = new HttpRequestMessage(HttpMethod.Post, "/api/auth/logout");
        logout.Headers.Add("Origin", loop.ApiUrl);
        Assert.Equal(HttpStatusCode.NoContent, (await browser.SendAsync(logout)).StatusCode);
        Assert.Empty(cookies.GetCookies(new Uri(loop.ApiUrl)));
        await ReadAsync(await script.GetAsync("/api/channels"), HttpStatusCode.Unauthorized);
        // A stale session does not keep anyone from logging in again.
        Assert.Equal(HttpStatusCode.OK, (await script.PostAsJsonAsync("/api/auth/login", new { username = "admin", password = Password })).StatusCode);
    }

    [Fact]
    public async Task Api_tokens_are_shown_once_work_as_bearer_and_stop_working_when_revoked()
    {
        await using var loop = await LoopDaemon.StartAsync();
        using var user = Anonymous(loop, out _);
        await ReadAsync(await user.PostAsJsonAsync("/api/auth/setup", new { username = "admin", password = Password, setup_code = loop.SetupCode }), HttpStatusCode.Created);
        var session = await ReadAsync(await user.PostAsJsonAsync("/api/auth/login", new { username = "admin", password = Password }), HttpStatusCode.OK);
        user.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (string)session["token"]!);

        await ReadAsync(await user.PostAsJsonAsync("/api/auth/tokens", new { name = " " }), HttpStatusCode.BadRequest);
        var created = await ReadAsync(await user.PostAsJsonAsync("/api/auth/tokens", new { name = "backup script" }), HttpStatusCode.Created);
        var token = (string)created["token"]!;
        Assert.StartsWith("loopat_", token);

        using var script = Anonymous(loop, out _);
        script.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var channel = await ReadAsync(await script.PostAsJsonAsync("/api/channels", new { name = "from a script" }), HttpStatusCode.Created);

        using var listed = await user.GetAsync("/api/auth/tokens");
        var text = await listed.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, listed.StatusCode);
        Assert.DoesNotContain(token, text);
        Assert.DoesNotContain(loop.LocalToken, text); // the machine token is not a user's to manage
        var entry = Assert.Single(JsonNode.Parse(text)!.AsArray())!.AsObject();
        Assert.Equal("backup script", (string)entry["name"]!);
        Assert.NotNull((string?)entry["last_used_at"]);
        Assert.False(entry.ContainsKey("token"));

        // A channel token may not manage user tokens.
        var channelToken = (string)(await loop.GetObjectAsync($"/api/channels/{channel["id"]}/token"))["token"]!;
        using var agent = Anonymous(loop, out _);
        agent.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", channelToken);
        await ReadAsync(await agent.GetAsync("/api/auth/tokens"), HttpStatusCode.Forbidden);

        Assert.Equal(HttpStatusCode.NoContent, (await user.DeleteAsync($"/api/auth/tokens/{created["id"]}")).StatusCode);
        var revoked = await ReadAsync(await script.GetAsync("/api/channels"), HttpStatusCode.Unauthorized);
        Assert.Contains("not valid", (string)revoked["detail"]!);
        await ReadAsync(await user.DeleteAsync($"/api/auth/tokens/{created["id"]}"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Every_endpoint_but_health_status_setup_and_login_refuses_anonymous_calls()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channelId = (string)(await loop.CreateChannelAsync())["id"]!;
        using var anonymous = Anonymous(loop, out _);
        var json = () => new StringContent("{}", Encoding.UTF8, "application/json");
        var calls = new (HttpMethod Method, string Path)[]
        {
            (HttpMethod.Get, "/api/channels"), (HttpMethod.Post, "/api/channels"), (HttpMethod.Get, $"/api/channels/{channelId}"),
            (HttpMethod.Get, $"/api/channels/{channelId}/token"), (HttpMethod.Get, $"/api/channels/{channelId}/messages"),
            (HttpMethod.Post, $"/api/channels/{channelId}/messages"), (HttpMethod.Get, $"/api/channels/{channelId}/runs"),
            (HttpMethod.Get, "/api/runs/run_x"), (HttpMethod.Post, "/api/runs/run_x/cancel"), (HttpMethod.Get, "/api/events"),
            (HttpMethod.Get, "/api/tasks"), (HttpMethod.Post, "/api/tasks"), (HttpMethod.Get, "/api/tasks/task_x"),
            (HttpMethod.Patch, "/api/tasks/task_x"), (HttpMethod.Delete, "/api/tasks/task_x"), (HttpMethod.Get, "/api/tasks/task_x/runs"),
            (HttpMethod.Post, "/api/tasks/task_x/start"), (HttpMethod.Post, "/api/tasks/task_x/stop"), (HttpMethod.Get, "/api/templates"),
            (HttpMethod.Post, $"/api/channels/{channelId}/templates/daily"), (HttpMethod.Post, "/api/auth/logout"),
            (HttpMethod.Get, "/api/auth/tokens"), (HttpMethod.Post, "/api/auth/tokens"), (HttpMethod.Delete, "/api/auth/tokens/tok_x"),
            (HttpMethod.Get, "/api/no-such-endpoint"),
        };
        foreach (var (method, path) in calls)
        {
            using var request = new HttpRequestMessage(method, path) { Content = method == HttpMethod.Get || method == HttpMethod.Delete ? null : json() };
            using var response = await anonymous.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path} answered {(int)response.StatusCode} without credentials");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }
        using var bogus = Anonymous(loop, out _);
        bogus.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "loopat_not-a-real-token");
        await ReadAsync(await bogus.GetAsync("/api/channels"), HttpStatusCode.Unauthorized);

        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/api/health")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/api/auth/status")).StatusCode);
        // Nothing the anonymous calls asked for happened.
        Assert.Single(await loop.GetArrayAsync("/api/channels"));
    }

    [Fact]
    public async Task The_local_token_file_is_private_and_replaced_on_every_start()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var path = Path.Combine(loop.Home, "secrets", "local-token");
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }
        var first = loop.LocalToken;

        await loop.KillAsync();
        await loop.RestartAsync();
        Assert.NotEqual(first, loop.LocalToken);
        Assert.Equal(HttpStatusCode.OK, (await loop.Http.GetAsync("/api/channels")).StatusCode);
        using var old = Anonymous(loop, out _);
        old.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", first);
        await ReadAsync(await old.GetAsync("/api/channels"), HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Logins_are_limited_per_address_and_calls_per_credential_with_429_and_retry_after()
    {
        await using var loop = await LoopDaemon.StartAsync(environment: new() { ["LOOP_API_RATE_LIMIT_PER_MINUTE"] = "30" });
        using var guesser = Anonymous(loop, out _);
        HttpResponseMessage? refused = null;
        for (var attempt = 1; attempt <= 11 && refused is null; attempt++)
        {
            // A different made-up account each time: the address's own limit stops it.
            var response = await guesser.PostAsJsonAsync("/api/auth/login", new { username = $"user{attempt}", password = $"guess {attempt}" });
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.Equal(11, attempt); // 10 logins a minute
                refused = response;
            }
        }
        await AssertTooManyAsync(refused);

        // The rest of the API: 30 a minute here, counted for this token alone (the guesses from its
        // address took none of it); health is never limited.
        for (var call = 1; call <= 30; call++)
        {
            using var response = await loop.Http.GetAsync("/api/channels");
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"call {call} answered {(int)response.StatusCode}");
        }
        await AssertTooManyAsync(await loop.Http.GetAsync("/api/channels"));
        Assert.Equal(HttpStatusCode.OK, (await loop.Http.GetAsync("/api/health")).StatusCode);
    }

    [Fact]
    public async Task A_flood_of_anonymous_calls_from_the_owners_address_does_not_lock_the_owner_out()
    {
        await using var loop = await LoopDaemon.StartAsync(environment: new() { ["LOOP_API_RATE_LIMIT_PER_MINUTE"] = "120" });
        using var owner = Anonymous(loop, out _);
        await ReadAsync(await owner.PostAsJsonAsync("/api/auth/setup", new { username = "admin", password = Password, setup_code = loop.SetupCode }), HttpStatusCode.Created);
        await ReadAsync(await owner.PostAsJsonAsync("/api/auth/login", new { username = "admin", password = Password }), HttpStatusCode.OK);

        // Another program on the same machine (the same address) calls without credentials, or with a bad token.
        using var stranger = Anonymous(loop, out _);
        var answers = new List<HttpStatusCode>();
        for (var call = 0; call < 125; call++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/channels");
            if (call % 2 == 1)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "loopat_not-a-real-token");
            }
            using var response = await stranger.SendAsync(request);
            answers.Add(response.StatusCode);
        }
        Assert.Equal(HttpStatusCode.Unauthorized, answers[0]);
        Assert.Equal(HttpStatusCode.TooManyRequests, answers[^1]);

        // The owner, signed in by cookie or by token from that same address, works on.
        Assert.Equal(HttpStatusCode.OK, (await owner.GetAsync("/api/channels")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await loop.Http.GetAsync("/api/channels")).StatusCode);
    }

    [Fact]
    public async Task The_loop_home_is_private_to_its_owner_and_so_are_the_store_files()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // no unix modes
        }
        // A home someone made readable for all is tightened at start.
        var home = Directory.CreateTempSubdirectory("loop-it-").FullName;
        File.SetUnixFileMode(home, (UnixFileMode)0b111_101_101);
        await using var loop = await LoopDaemon.StartAsync(home: home);
        await loop.CreateChannelAsync(); // something written, so the -wal file exists

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(loop.Home));
        foreach (var file in new[] { "loop.db", "loop.db-wal", "loop.db-shm" })
        {
            var path = Path.Combine(loop.Home, file);
            Assert.True(File.Exists(path), $"{file} is missing");
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }
        await loop.WaitForOutputAsync(new System.Text.RegularExpressions.Regex("was open to other users \\(mode 755\\); it is now 0700"));
    }

    private static async Task AssertTooManyAsync(HttpResponseMessage? response)
    {
        Assert.NotNull(response);
        var retryAfter = response.Headers.RetryAfter?.Delta;
        Assert.True(retryAfter is { TotalSeconds: >= 1 and <= 60 }, $"Retry-After was {retryAfter}");
        var problem = await ReadAsync(response, HttpStatusCode.TooManyRequests);
        Assert.Contains("try again in", (string)problem["detail"]!);
    }

    private static HttpClient Anonymous(LoopDaemon loop, out CookieContainer cookies)
    {
        cookies = new CookieContainer();
        return new HttpClient(new HttpClientHandler { CookieContainer = cookies }) { BaseAddress = new Uri(loop.ApiUrl) };
    }

    private static async Task<JsonObject> ReadAsync(HttpResponseMessage response, HttpStatusCode expected)
    {
        using (response)
        {
            return await LoopDaemon.ReadObjectAsync(response, expected);
        }
    }

    private static string StoredBytes(LoopDaemon loop) =>
        string.Concat(new[] { "loop.db", "loop.db-wal" }.Select(f => Path.Combine(loop.Home, f)).Where(File.Exists)
            .Select(f => Encoding.Latin1.GetString(File.ReadAllBytes(f))));
}
