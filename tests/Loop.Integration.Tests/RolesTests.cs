namespace Loop.Integration.Tests;

using Loop.Testing;

using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

/// <summary>Dashboard accounts with roles through a real <c>loop serve</c>: an admin adds a viewer, who
/// may read everything and change nothing, with a session or an API token alike.</summary>
public sealed class RolesTests
{
    private const string Password = "correct horse battery";
    private const string ViewerRefusal = "a viewer may look but not change anything; ask an admin";

    [Fact]
    public async Task A_viewer_reads_everything_and_is_refused_every_change_with_a_session_or_an_api_token()
    {
        await using var loop = await LoopDaemon.StartAsync();
        using var admin = await SetUpAdminAsync(loop);
        var channelId = (string)(await loop.CreateChannelAsync())["id"]!;
        var taskId = (string)(await loop.CreateTaskAsync(new { channel_id = channelId, type = "interval", schedule = "1h", prompt = "hourly", enabled = false }))["id"]!;

        var created = await ReadAsync(await admin.PostAsJsonAsync("/api/users", new { username = "vera", password = Password, role = "viewer" }), HttpStatusCode.Created);
        Assert.Equal(("vera", "viewer"), ((string)created["username"]!, (string)created["role"]!));
        var veraId = (string)created["id"]!;
        var users = await ReadArrayAsync(await admin.GetAsync("/api/users"));
        Assert.Equal(["admin:admin", "vera:viewer"], users.Select(u => $"{u!["username"]}:{u["role"]}"));

        var login = await LogInAsync(loop, "vera", Password);
        Assert.Equal("viewer", (string)login["role"]!);
        using var viewer = Bearer(loop, (string)login["token"]!);
        var status = await ReadAsync(await viewer.GetAsync("/api/auth/status"), HttpStatusCode.OK);
        Assert.Equal(("vera", veraId, "viewer"), ((string)status["username"]!, (string)status["user_id"]!, (string)status["role"]!));

        var apiToken = (string)(await ReadAsync(await viewer.PostAsJsonAsync("/api/auth/tokens", new { name = "read-only script" }), HttpStatusCode.Created))["token"]!;
        using var script = Bearer(loop, apiToken);
        Assert.Equal("viewer", (string)(await ReadAsync(await script.GetAsync("/api/auth/status"), HttpStatusCode.OK))["role"]!);

        foreach (var caller in new[] { viewer, script })
        {
            foreach (var path in new[] { "/api/channels", $"/api/channels/{channelId}", "/api/runs", "/api/usage", "/api/tasks", $"/api/tasks/{taskId}",
                $"/api/channels/{channelId}/budget", $"/api/channels/{channelId}/messages", "/api/users", "/api/auth/tokens", "/api/runtime" })
            {
                using var read = await caller.GetAsync(path);
                Assert.True(read.StatusCode == HttpStatusCode.OK, $"GET {path}: {(int)read.StatusCode} {await read.Content.ReadAsStringAsync()}");
            }
            using (var feed = await caller.GetAsync("/api/events", HttpCompletionOption.ResponseHeadersRead))
            {
                Assert.Equal(HttpStatusCode.OK, feed.StatusCode);
                Assert.Equal("text/event-stream", feed.Content.Headers.ContentType?.MediaType);
            }

            var changes = new (HttpMethod Method, string Path, object? Body)[]
            {
                (HttpMethod.Post, "/api/channels", new { name = "not allowed" }),
                (HttpMethod.Patch, $"/api/channels/{channelId}", new { name = "renamed" }),
                (HttpMethod.Delete, $"/api/channels/{channelId}", null),
                (HttpMethod.Post, $"/api/channels/{channelId}/messages", new { author = "vera", content = "hello" }),
                (HttpMethod.Put, $"/api/channels/{channelId}/budget", new { daily_usd = 1 }),
                (HttpMethod.Post, "/api/tasks", new { channel_id = channelId, type = "interval", schedule = "1h", prompt = "more" }),
                (HttpMethod.Patch, $"/api/tasks/{taskId}", new { enabled = true }),
                (HttpMethod.Delete, $"/api/tasks/{taskId}", null),
                (HttpMethod.Post, "/api/users", new { username = "eve", password = Password, role = "admin" }),
                (HttpMethod.Patch, $"/api/users/{veraId}", new { role = "admin" }),
                (HttpMethod.Delete, $"/api/users/{veraId}", null),
                // A GET, but the channel token it hands out could post in the channel.
                (HttpMethod.Get, $"/api/channels/{channelId}/token", null),
            };
            foreach (var (method, path, body) in changes)
            {
                using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
                var refused = await ReadAsync(await caller.SendAsync(request), HttpStatusCode.Forbidden);
                Assert.True(ViewerRefusal == (string?)refused["detail"], $"{method} {path}: {refused["detail"]}");
            }
        }

        // Nothing changed.
        Assert.Equal(["admin", "vera"], (await ReadArrayAsync(await admin.GetAsync("/api/users"))).Select(u => (string)u!["username"]!));
        Assert.False((bool)(await loop.GetObjectAsync($"/api/tasks/{taskId}"))["enabled"]!);
        Assert.Empty(await loop.GetArrayAsync($"/api/channels/{channelId}/messages"));

        // A viewer may change their own password, and log out.
        await ReadAsync(await viewer.PatchAsJsonAsync($"/api/users/{veraId}", new { password = "a new password" }), HttpStatusCode.OK);
        using var logout = await viewer.PostAsync("/api/auth/logout", null);
        Assert.Equal(HttpStatusCode.NoContent, logout.StatusCode);
        await LogInAsync(loop, "vera", "a new password");
    }

    [Fact]
    public async Task The_last_admin_stays_deleting_a_user_ends_their_session_and_bad_input_names_the_field()
    {
        await using var loop = await LoopDaemon.StartAsync();
        using var admin = await SetUpAdminAsync(loop);
        var adminId = (string)(await ReadAsync(await admin.GetAsync("/api/auth/status"), HttpStatusCode.OK))["user_id"]!;

        var demote = await ReadAsync(await admin.PatchAsJsonAsync($"/api/users/{adminId}", new { role = "viewer" }), HttpStatusCode.Conflict);
        Assert.Contains("admin is the last admin", (string)demote["detail"]!);
        Assert.Contains("last admin", (string)(await ReadAsync(await admin.DeleteAsync($"/api/users/{adminId}"), HttpStatusCode.Conflict))["detail"]!);

        Assert.Contains("role", Fields(await ReadAsync(await admin.PostAsJsonAsync("/api/users", new { username = "vera", password = Password, role = "owner" }), HttpStatusCode.BadRequest)));
        Assert.Contains("password", Fields(await ReadAsync(await admin.PostAsJsonAsync("/api/users", new { username = "vera", password = "short", role = "viewer" }), HttpStatusCode.BadRequest)));
        Assert.Contains("username", Fields(await ReadAsync(await admin.PostAsJsonAsync("/api/users", new { username = "", password = Password, role = "viewer" }), HttpStatusCode.BadRequest)));
        var taken = await ReadAsync(await admin.PostAsJsonAsync("/api/users", new { username = "admin", password = Password, role = "viewer" }), HttpStatusCode.Conflict);
        Assert.Contains("username \"admin\" is taken", (string)taken["detail"]!);
        await ReadAsync(await admin.DeleteAsync("/api/users/usr_missing"), HttpStatusCode.NotFound);

        // The machine's local token is an admin too.
        var vera = await ReadAsync(await loop.Http.PostAsJsonAsync("/api/users", new { username = "vera", password = Password, role = "viewer" }), HttpStatusCode.Created);
        var login = await LogInAsync(loop, "vera", Password);
        using var viewer = Bearer(loop, (string)login["token"]!);
        var apiToken = (string)(await ReadAsync(await viewer.PostAsJsonAsync("/api/auth/tokens", new { name = "script" }), HttpStatusCode.Created))["token"]!;
        using var script = Bearer(loop, apiToken);
        Assert.Equal(HttpStatusCode.OK, (await viewer.GetAsync("/api/channels")).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/users/{vera["id"]}")).StatusCode);
        await ReadAsync(await viewer.GetAsync("/api/channels"), HttpStatusCode.Unauthorized);
        await ReadAsync(await script.GetAsync("/api/channels"), HttpStatusCode.Unauthorized);
        Assert.Empty(await ReadArrayAsync(await admin.GetAsync("/api/auth/tokens")));

        // With a second admin, the first may step down; a viewer's session then refuses changes at once.
        var ada = await ReadAsync(await admin.PostAsJsonAsync("/api/users", new { username = "ada", password = Password, role = "admin" }), HttpStatusCode.Created);
        Assert.Equal("viewer", (string)(await ReadAsync(await admin.PatchAsJsonAsync($"/api/users/{adminId}", new { role = "viewer" }), HttpStatusCode.OK))["role"]!);
        var refused = await ReadAsync(await admin.PostAsJsonAsync("/api/users", new { username = "eve", password = Password }), HttpStatusCode.Forbidden);
        Assert.Equal(ViewerRefusal, (string)refused["detail"]!);
        await ReadAsync(await loop.Http.PatchAsJsonAsync($"/api/users/{ada["id"]}", new { role = "viewer" }), HttpStatusCode.Conflict);
    }

    private static async Task<HttpClient> SetUpAdminAsync(LoopDaemon loop)
    {
        using var anonymous = Anonymous(loop);
        var setup = await ReadAsync(await anonymous.PostAsJsonAsync("/api/auth/setup", new { username = "admin", password = Password, setup_code = loop.SetupCode }), HttpStatusCode.Created);
        Assert.Equal("admin", (string)setup["role"]!);
        var login = await ReadAsync(await anonymous.PostAsJsonAsync("/api/auth/login", new { username = "admin", password = Password }), HttpStatusCode.OK);
        Assert.Equal("admin", (string)login["role"]!);
        return Bearer(loop, (string)login["token"]!);
    }

    private static async Task<JsonObject> LogInAsync(LoopDaemon loop, string username, string password)
    {
        using var anonymous = Anonymous(loop);
        return await ReadAsync(await anonymous.PostAsJsonAsync("/api/auth/login", new { username, password }), HttpStatusCode.OK);
    }

    private static HttpClient Anonymous(LoopDaemon loop) => new() { BaseAddress = new Uri(loop.ApiUrl) };

    private static HttpClient Bearer(LoopDaemon loop, string token)
    {
        var client = Anonymous(loop);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    private static IEnumerable<string> Fields(JsonObject problem) => problem["errors"]!.AsObject().Select(e => e.Key);

    private static async Task<JsonObject> ReadAsync(HttpResponseMessage response, HttpStatusCode expected)
    {
        using (response)
        {
            return await LoopDaemon.ReadObjectAsync(response, expected);
        }
    }

    private static async Task<JsonArray> ReadArrayAsync(HttpResponseMessage response)
    {
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {text}");
            return JsonNode.Parse(text)!.AsArray();
        }
    }
}
