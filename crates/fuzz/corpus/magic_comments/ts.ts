// @ts-nocheck
// plain comment

// @cors https://app.example.com
/* block */
