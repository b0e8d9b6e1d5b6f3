namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>/api/connectors on a real daemon: connectors added, edited and removed, credentials taken
/// in and never shown again nor stored in the clear, bad input refused with what to fix.</summary>
public sealed class ConnectorApiTests
{
    private const string Token = "123456:telegram-token-never-shown";

    [Fact]
    public async Task A_connectors_owners_and_members_are_set_read_checked_and_removed_with_it()
    {
        await using var loop = await LoopDaemon.StartAsync();
        using var created = await loop.Http.PostAsJsonAsync("/api/connectors", new Dictionary<string, object>
        {
            ["kind"] = "telegram",
            ["name"] = "Team bot",
            ["token"] = Token,
            ["allowed_users"] = new[] { "12345" },
            ["enabled"] = false,
        });
        var id = (string)JsonNode.Parse(await created.Content.ReadAsStringAsync())!["id"]!;

        var none = await loop.GetObjectAsync($"/api/connectors/{id}/roles");
        Assert.False((bool)none["configured"]!);
        using (var set = await loop.Http.PutAsJsonAsync($"/api/connectors/{id}/roles", new { owners = new[] { "12345", " 12345 " }, members = new[] { "@bob" } }))
        {
            var roles = await LoopDaemon.ReadObjectAsync(set, HttpStatusCode.OK);
            Assert.Equal(["12345"], roles["owners"]!.AsArray().Select(o => (string)o!));
            Assert.True((bool)roles["configured"]!);
        }
        Assert.Equal(["@bob"], (await loop.GetObjectAsync($"/api/connectors/{id}/roles"))["members"]!.AsArray().Select(o => (string)o!));

        foreach (var (body, message) in new (object, string)[]
        {
            (new { owners = Array.Empty<string>(), members = new[] { "1" } }, "owners is empty: name at least one owner"),
            (new { owners = new[] { "*" } }, "owners cannot be"),
            (new { owners = new[] { "" } }, "owners must be a list"),
        })
        {
            using var refused = await loop.Http.PutAsJsonAsync($"/api/connectors/{id}/roles", body);
            var text = await refused.Content.ReadAsStringAsync();
            Assert.True(refused.StatusCode == HttpStatusCode.BadRequest, text);
            Assert.Contains(message, text);
        }
        using (var missing = await loop.Http.GetAsync("/api/connectors/cn_nope/roles"))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }
        using (var deleted = await loop.Http.DeleteAsync($"/api/connectors/{id}"))
        {
            Assert.True(deleted.IsSuccessStatusCode);
        }
        using (var gone = await loop.Http.GetAsync($"/api/connectors/{id}/roles"))
        {
            Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        }
    }

    [Fact]
    public async Task A_connector_is_added_edited_and_removed_and_its_credentials_are_never_shown_or_stored_in_the_clear()
    {
        await using var loop = await LoopDaemon.StartAsync();

        using var created = await loop.Http.PostAsJsonAsync("/api/connectors", new Dictionary<string, object>
        {
            ["kind"] = "telegram",
            ["name"] = "Support bot",
            ["token"] = Token,
            ["allowed_users"] = new[] { "12345", "@Alice" },
        });
        var text = await created.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.DoesNotContain(Token, text);
        var connector = JsonNode.Parse(text)!;
        var id = (string)connector["id"]!;
        Assert.Equal(("telegram", "Support bot", true, "api"), ((string)connector["kind"]!, (string)connector["name"]!, (bool)connector["enabled"]!, (string)connector["source"]!));
        Assert.Equal(["12345", "@alice"], connector["allowed_users"]!.AsArray().Select(a => (string)a!));
        Assert.Equal(["token"], connector["secrets_set"]!.AsArray().Select(a => (string)a!));

        // An edit changes what it names and keeps the token.
        var edited = await PatchAsync(loop, id, new { name = "Helpdesk", enabled = false, api_url = "http://127.0.0.1:9" });
        Assert.Equal(("Helpdesk", false, "disabled"), ((string)edited["name"]!, (bool)edited["enabled"]!, (string)edited["status"]!["state"]!));
        Assert.Equal("http://127.0.0.1:9", (string)edited["settings"]!["api_url"]!);
        Assert.Equal(["token"], edited["secrets_set"]!.AsArray().Select(a => (string)a!));
        var listed = Assert.Single(await loop.GetArrayAsync("/api/connectors"))!;
        Assert.Equal("Helpdesk", (string)listed["name"]!);

        // Every file of the home (the database, its WAL, logs, keys), but the API's socket.
        var files = Directory.GetFiles(loop.Home, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(".sock", StringComparison.Ordinal));
        Assert.All(files, file => Assert.DoesNotContain(Token, Encoding.Latin1.GetString(File.ReadAllBytes(file))));
        Assert.DoesNotContain(Token, loop.Output);

        using (var deleted = await loop.Http.DeleteAsync($"/api/connectors/{id}"))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }
        using var gone = await loop.Http.GetAsync($"/api/connectors/{id}");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task Bad_connectors_are_refused_saying_what_to_fix()
    {
        await using var loop = await LoopDaemon.StartAsync();

        await RefusedAsync(loop, new { kind = "fax", name = "x" }, HttpStatusCode.BadRequest, "kind must be one of discord, telegram, email, whatsapp");
        await RefusedAsync(loop, new { kind = "telegram", name = "x" }, HttpStatusCode.BadRequest, "token is required for a telegram connector");
        await RefusedAsync(loop, new { kind = "telegram", token = Token }, HttpStatusCode.BadRequest, "name is required");
        await RefusedAsync(loop, new { kind = "telegram", name = "x", token = Token, colour = "red" }, HttpStatusCode.BadRequest,
            "a telegram connector has no setting 'colour': its settings are token, webhook_url, api_url, mode, model, progress, allowed_users");
        await RefusedAsync(loop, new { kind = "telegram", name = "x", token = Token, mode = "api" }, HttpStatusCode.BadRequest,
            "mode must be one of container, direct, e.g. \"container\" (found \"api\")");
        await RefusedAsync(loop, new { kind = "telegram", name = "x", token = Token, model = "--help" }, HttpStatusCode.BadRequest,
            "model must be a model name or alias");
        await RefusedAsync(loop, new { kind = "telegram", name = "x", token = Token, allowed_users = new[] { "not a user!" } }, HttpStatusCode.BadRequest,
            "allowed_users entries must be like");
        await RefusedAsync(loop, new { kind = "email", name = "mail", imap = "imap.example.com", smtp = "smtp.example.com:587", username = "u", password = "p", address = "loop@example.com" },
            HttpStatusCode.BadRequest, "imap must be host:port, e.g. \"imap.example.com:993\"");

        await RefusedAsync(loop, new { kind = "telegram", name = "bot", token = Token }, HttpStatusCode.Created, "");
        await RefusedAsync(loop, new { kind = "telegram", name = "BOT", token = Token }, HttpStatusCode.Conflict, "is called \"bot\" already");

        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        var channelToken = (string)(await loop.GetObjectAsync($"/api/channels/{channel}/token"))["token"]!;
        using var agent = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        agent.DefaultRequestHeaders.Authorization = new("Bearer", channelToken);
        using var forbidden = await agent.GetAsync("/api/connectors");
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
    }

    [Fact]
    public async Task A_connector_of_the_config_file_is_listed_and_changed_only_there()
    {
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["telegram_token"] = Token, ["telegram_api_url"] = "http://127.0.0.1:9" });

        var connector = Assert.Single(await loop.GetArrayAsync("/api/connectors"))!;
        Assert.Equal(("telegram", "telegram", "config"), ((string)connector["id"]!, (string)connector["kind"]!, (string)connector["source"]!));
        Assert.Empty(connector["allowed_users"]!.AsArray());

        using var patch = await loop.Http.PatchAsJsonAsync("/api/connectors/telegram", new { name = "renamed" });
        Assert.Equal(HttpStatusCode.Conflict, patch.StatusCode);
        Assert.Contains("comes from config.json: change its telegram_* keys there", await patch.Content.ReadAsStringAsync());
    }

    private static async Task<JsonNode> PatchAsync(LoopDaemon loop, string id, object body)
    {
        using var response = await loop.Http.PatchAsJsonAsync($"/api/connectors/{id}", body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonNode.Parse(text)!;
    }

    private static async Task RefusedAsync(LoopDaemon loop, object body, HttpStatusCode expected, string says)
    {
        using var response = await loop.Http.PostAsJsonAsync("/api/connectors", body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"{(int)response.StatusCode}: {text}");
        if (expected != HttpStatusCode.Created)
        {
            Assert.Contains(says, (string)JsonNode.Parse(text)!["detail"]!);
            Assert.DoesNotContain("System.", text);
        }
    }
}
