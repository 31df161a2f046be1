<?php
// The tutorial's user registration web app: a form to register a user (name, e-mail) and an
// overview of the registered users, stored in the `users` table of MySQL (initdb.d/schema.sql).
declare(strict_types=1);

// The password: the file DB_PASSWORD_FILE names (a swarm secret), else DB_PASSWORD.
function dbPassword(): string
{
    $file = getenv('DB_PASSWORD_FILE');
    if ($file !== false && $file !== '') {
        $value = @file_get_contents($file);
        if ($value === false) {
            throw new RuntimeException('cannot read the database password from ' . $file);
        }
        return rtrim($value, "\r\n");
    }
    return getenv('DB_PASSWORD') ?: '';
}

function db(): mysqli
{
    mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
    return new mysqli(getenv('DB_HOST') ?: 'db', getenv('DB_USER') ?: 'demo',
        dbPassword(), getenv('DB_NAME') ?: 'registry');
}

function h(string $s): string
{
    return htmlspecialchars($s, ENT_QUOTES, 'UTF-8');
}

$message = '';
$error = '';
try {
    $conn = db();
    if ($_SERVER['REQUEST_METHOD'] === 'POST') {
        $name = trim((string)($_POST['name'] ?? ''));
        $email = trim((string)($_POST['email'] ?? ''));
        if ($name === '' || !filter_var($email, FILTER_VALIDATE_EMAIL)) {
            $error = 'Please give a name and a valid e-mail address.';
        } else {
            $stmt = $conn->prepare('INSERT IGNORE INTO users (name, email) VALUES (?, ?)');
            $stmt->bind_param('ss', $name, $email);
            $stmt->execute();
            $message = $stmt->affected_rows > 0 ? "Registered $name." : "$name is already registered.";
        }
    }
    $users = $conn->query('SELECT id, name, email FROM users ORDER BY id')->fetch_all(MYSQLI_ASSOC);
} catch (RuntimeException $e) { // mysqli_sql_exception is one
    $users = [];
    $error = 'The database is not available: ' . $e->getMessage();
}
?>
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>User registration</title></head>
<body>
<h1>User registration</h1>
<?php if ($message !== ''): ?><p id="message"><?= h($message) ?></p><?php endif; ?>
<?php if ($error !== ''): ?><p id="error"><?= h($error) ?></p><?php endif; ?>
<form method="post" action="index.php">
  <label>Name <input type="text" name="name" id="name" required></label>
  <label>E-mail <input type="email" name="email" id="email" required></label>
  <button type="submit" id="register">Register</button>
</form>
<h2>Registered users</h2>
<table id="users">
  <thead><tr><th>#</th><th>Name</th><th>E-mail</th></tr></thead>
  <tbody>
<?php foreach ($users as $u): ?>
    <tr><td><?= (int)$u['id'] ?></td><td class="name"><?= h($u['name']) ?></td><td class="email"><?= h($u['email']) ?></td></tr>
<?php endforeach; ?>
  </tbody>
</table>
<p>Served by <?= h(gethostname() ?: 'unknown') ?></p>
</body>
</html>
