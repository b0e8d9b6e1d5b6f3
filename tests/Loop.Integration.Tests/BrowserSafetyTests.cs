namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Loop.Testing;

/// <summary>What a page of another site, or a DNS-rebinding page, can make a browser send to the
/// daemon: forged Origin, Referer, Content-Type and Host headers over real HTTP on loopback.</summary>
public sealed class BrowserSafetyTests
{
    private const string Password = "correct horse battery";

    [Fact]
    public async Task A_cookie_signed_change_from_another_origin_is_refused_and_nothing_happens()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        using var browser = await LoggedInBrowserAsync(loop);
        var evil = new Dictionary<string, string>
        {
            ["another site"] = "Origin: http://evil.example",
            ["another port of the same host"] = "Origin: http://127.0.0.1:1",
            ["a sandboxed page"] = "Origin: null",
            ["no Origin, a Referer of another site"] = "Referer: http://evil.example/page.html",
            ["neither Origin nor Referer"] = "",
        };
        foreach (var (what, header) in evil)
        {
            using var message = Json(HttpMethod.Post, $"/api/channels/{channel}/messages", new { author = "mallory", content = "rm -rf ~" }, header);
            var refused = await ProblemAsync(await browser.SendAsync(message), HttpStatusCode.Forbidden, what);
            Assert.Contains("Authorization: Bearer", (string)refused["detail"]!);
            using var token = Json(HttpMethod.Post, "/api/auth/tokens", new { name = "stolen" }, header);
            await ProblemAsync(await browser.SendAsync(token), HttpStatusCode.Forbidden, what);
            using var project = Json(HttpMethod.Post, "/api/channels", new { dir_path = "/root" }, header);
            await ProblemAsync(await browser.SendAsync(project), HttpStatusCode.Forbidden, what);
        }
        var foreign = await ProblemAsync(await browser.SendAsync(Json(HttpMethod.Post, "/api/auth/tokens", new { name = "x" }, "Origin: http://evil.example")), HttpStatusCode.Forbidden, "detail");
        Assert.Contains("http://evil.example", (string)foreign["detail"]!);

        // Nothing of it happened.
        Assert.Empty(await loop.GetArrayAsync($"/api/channels/{channel}/messages"));
        Assert.Empty(await loop.GetArrayAsync("/api/auth/tokens"));
        Assert.Single(await loop.GetArrayAsync("/api/channels"));

        // The dashboard's own requests carry its origin (or, without one, its Referer) and work.
        using (var own = Json(HttpMethod.Post, "/api/auth/tokens", new { name = "from the dashboard" }, $"Origin: {loop.ApiUrl}"))
        {
            await LoopDaemon.ReadObjectAsync(await browser.SendAsync(own), HttpStatusCode.Created);
        }
        using (var own = Json(HttpMethod.Post, "/api/channels", new { name = "from the dashboard" }, $"Referer: {loop.ApiUrl}/#/channels"))
        {
            await LoopDaemon.ReadObjectAsync(await browser.SendAsync(own), HttpStatusCode.Created);
        }
        // Reading needs no Origin, and a script with a Bearer token sends none.
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/api/channels")).StatusCode);
        await LoopDaemon.ReadObjectAsync(await loop.Http.PostAsJsonAsync("/api/auth/tokens", new { name = "from a script" }), HttpStatusCode.Created);
        Assert.Equal(2, (await loop.GetArrayAsync("/api/auth/tokens")).Count);
    }

    [Fact]
    public async Task A_body_that_is_not_sent_as_json_gets_415_and_nothing_happens()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        using var browser = await LoggedInBrowserAsync(loop);
        const string Body = """{"author": "mallory", "content": "hello"}""";

        foreach (var type in new[] { "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x" })
        {
            // What a form or a no-cors fetch of another site sends; here even from the daemon's own origin.
            using var simple = new HttpRequestMessage(HttpMethod.Post, $"/api/channels/{channel}/messages") { Content = new StringContent(Body, Encoding.UTF8) };
            simple.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
            simple.Headers.Add("Origin", loop.ApiUrl);
            var refused = await ProblemAsync(await browser.SendAsync(simple), HttpStatusCode.UnsupportedMediaType, type);
            Assert.Contains("Content-Type: application/json", (string)refused["detail"]!);

            using var scripted = new HttpRequestMessage(HttpMethod.Post, $"/api/channels/{channel}/messages") { Content = new StringContent(Body, Encoding.UTF8) };
            scripted.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
            await ProblemAsync(await loop.Http.SendAsync(scripted), HttpStatusCode.UnsupportedMediaType, type);
        }
        Assert.Empty(await loop.GetArrayAsync($"/api/channels/{channel}/messages"));
    }

    [Fact]
    public async Task A_host_name_the_daemon_does_not_serve_is_refused_before_anything_else()
    {
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["allowed_hosts"] = new JsonArray("loop.example.test", "proxy.example.test:8443") });
        using var anonymous = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        var code = loop.SetupCode;

        // A DNS-rebinding page: attacker.example resolves to 127.0.0.1, the browser sends its name.
        foreach (var host in new[] { "attacker.example", $"attacker.example:{loop.Port}", $"localhost:{loop.Port + 1}", "proxy.example.test:443" })
        {
            using var page = new HttpRequestMessage(HttpMethod.Get, "/");
            page.Headers.Host = host;
            var refused = await ProblemAsync(await anonymous.SendAsync(page), HttpStatusCode.MisdirectedRequest, host);
            Assert.Contains("allowed_hosts", (string)refused["detail"]!);
            using var health = new HttpRequestMessage(HttpMethod.Get, "/api/health");
            health.Headers.Host = host;
            await ProblemAsync(await anonymous.SendAsync(health), HttpStatusCode.MisdirectedRequest, host);
            using var setup = Json(HttpMethod.Post, "/api/auth/setup", new { username = "mallory", password = Password, setup_code = code }, $"Origin: http://{host}");
            setup.Headers.Host = host;
            await ProblemAsync(await anonymous.SendAsync(setup), HttpStatusCode.MisdirectedRequest, host);
        }
        Assert.True((bool)(await loop.GetObjectAsync("/api/auth/status"))["setup_required"]!);

        // Served: localhost and IP addresses on the API port, and the configured names.
        foreach (var host in new[] { $"localhost:{loop.Port}", $"127.0.0.1:{loop.Port}", $"[::1]:{loop.Port}", "loop.example.test", "LOOP.example.test:8080", "proxy.example.test:8443" })
        {
            using var page = new HttpRequestMessage(HttpMethod.Get, "/");
            page.Headers.Host = host;
            using var response = await anonymous.SendAsync(page);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"Host {host}: {(int)response.StatusCode}");
        }
        // The unix socket has no host names to check.
        using var socket = SocketClient.Create(loop, token: null);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/health");
        request.Headers.Host = "attacker.example";
        Assert.Equal(HttpStatusCode.OK, (await socket.SendAsync(request)).StatusCode);
    }

    [Fact]
    public async Task First_run_setup_needs_the_one_time_code_from_the_log_or_the_file()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var file = Path.Combine(loop.Home, "secrets", "setup-code");
        var code = loop.SetupCode;
        Assert.NotNull(code);
        Assert.Matches("^[A-Z2-9]{4}-[A-Z2-9]{4}$", code);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }
        var logged = await loop.WaitForOutputAsync(new Regex(@"First-run setup code: (\S+) \(also in (\S+)\)"));
        Assert.Equal(code, logged.Groups[1].Value);
        Assert.Equal(file, logged.Groups[2].Value.TrimEnd(';'));

        using var stranger = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        var missing = await ProblemAsync(await stranger.PostAsJsonAsync("/api/auth/setup", new { username = "mallory", password = Password }), HttpStatusCode.BadRequest, "no code");
        Assert.Contains("setup_code", missing["errors"]!.AsObject().Select(e => e.Key));
        Assert.Contains("secrets/setup-code", (string)missing["detail"]!);
        var wrong = await ProblemAsync(await stranger.PostAsJsonAsync("/api/auth/setup", new { username = "mallory", password = Password, setup_code = "ABCD-EFGH" }), HttpStatusCode.Forbidden, "wrong code");
        Assert.Contains("secrets/setup-code", (string)wrong["detail"]!);
        Assert.True((bool)(await loop.GetObjectAsync("/api/auth/status"))["setup_required"]!);
        await ProblemAsync(await stranger.PostAsJsonAsync("/api/auth/login", new { username = "mallory", password = Password }), HttpStatusCode.Unauthorized, "login");

        var admin = await LoopDaemon.ReadObjectAsync(
            await stranger.PostAsJsonAsync("/api/auth/setup", new { username = "admin", password = Password, setup_code = code }), HttpStatusCode.Created);
        Assert.Equal("admin", (string)admin["username"]!);
        Assert.False(File.Exists(file));
        await ProblemAsync(await stranger.PostAsJsonAsync("/api/auth/setup", new { username = "mallory", password = Password, setup_code = code }), HttpStatusCode.Conflict, "used code");

        // Started again with an account: no code printed, none on disk.
        await loop.StopAsync();
        var before = loop.Output.Length;
        await loop.RestartAsync();
        Assert.False(File.Exists(file));
        Assert.DoesNotContain("First-run setup code", loop.Output[before..]);
    }

    /// <summary>A browser signed in with the session cookie.</summary>
    private static async Task<HttpClient> LoggedInBrowserAsync(LoopDaemon loop)
    {
        var browser = new HttpClient(new HttpClientHandler { CookieContainer = new CookieContainer() }) { BaseAddress = new Uri(loop.ApiUrl) };
        await LoopDaemon.ReadObjectAsync(await browser.PostAsJsonAsync("/api/auth/setup", new { username = "admin", password = Password, setup_code = loop.SetupCode }), HttpStatusCode.Created);
        await LoopDaemon.ReadObjectAsync(await browser.PostAsJsonAsync("/api/auth/login", new { username = "admin", password = Password }), HttpStatusCode.OK);
        return browser;
    }

    /// <summary>A JSON request with one forged header ("Name: value"), or none when empty.</summary>
    private static HttpRequestMessage Json(HttpMethod method, string path, object body, string header)
    {
        var request = new HttpRequestMessage(method, path) { Content = JsonContent.Create(body) };
        if (header.Length > 0)
        {
            var colon = header.IndexOf(':');
            request.Headers.TryAddWithoutValidation(header[..colon], header[(colon + 1)..].Trim());
        }
        return request;
    }

    private static async Task<JsonObject> ProblemAsync(HttpResponseMessage response, HttpStatusCode expected, string what)
    {
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == expected, $"{what}: expected {(int)expected}, got {(int)response.StatusCode} {text}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            return JsonNode.Parse(text)!.AsObject();
        }
    }
}
